"""Trace generation: ask a teacher to reason through problems, and keep its reasoning as training traces.

    from rdistill.generate import GenerationOptions, generate_traces
    from rdistill.teachers import make_teacher

    client = make_teacher("offline:qwen2.5-coder-1.5b-instruct")
    summary = generate_traces(problems, client, "cot", GenerationOptions(samples=4), "traces.jsonl")

Strategies (strategies/, one file each): `cot` (terse numbered steps, N samples, self-consistency votes,
`adaptive` sampling that stops once the samples agree), `rationalize` (the gold answer is given, the reasoning
asked for), `orca` (several explanation styles), `domain:NAME` (math, code, legal, medical system prompts)
and `contrastive` (a correct and a plausibly wrong trace per problem, paired for DPO). Prompts are data:
templates.yaml, overridable with `--templates FILE`.

Every run appends to its output file and skips what is already there, so it can be killed and restarted;
with the response cache, a rerun of finished work costs no calls.

Scale-out: split a big job with `--shard I/N` (a stable hash of the problem id picks each machine's share),
run the shards anywhere, then `rdistill merge OUT SHARD... --cache-into CACHE --caches C1 C2 ...` joins the
trace files and the response caches. For throughput, serve the teacher with vLLM's OpenAI-compatible server
(`vllm serve MODEL`, then `--teacher openai:MODEL@http://host:8000/v1` and a high `--concurrency`) or with
llama.cpp's `llama-server` (parallel slots): rdistill does batching by keeping many requests in flight and
does not ship a serving engine of its own.
"""

from __future__ import annotations

from rdistill.generate.options import GenerationOptions, Shard
from rdistill.generate.progress import Progress
from rdistill.generate.runner import GenerationSummary, agenerate_traces, generate_traces, prepare_strategy

__all__ = ["GenerationOptions", "GenerationSummary", "Progress", "Shard", "agenerate_traces", "generate_traces",
           "prepare_strategy"]
