"""Batched evaluation of a local model vs one problem at a time, through rdistill's own evaluate().

Two engines:

    python bench/eval_batching.py                      # hf: SmolLM2-135M through transformers, 32 problems, 16 vs 1
    python bench/eval_batching.py --n 64 --batch-sizes 1,8,32 --max-tokens 256
    python bench/eval_batching.py --torch-threads 1     # on a small shared machine (see below)

    python bench/eval_batching.py --engine llamaserver  # llama.cpp's llama-server with Qwen2.5-Coder-0.5B (GGUF),
                                                        # 48 problems, 1 slot + 1 request at a time vs 16 + 16
    python bench/eval_batching.py --engine llamaserver --threads 2 --n 64

hf: each batch size gets its own freshly loaded model (batch_size rows per forward pass). llamaserver: each size N
gets its own llama-server with N slots and N requests in flight (continuous batching; the teacher prompt's shared
system prompt is reused from the slot's KV cache). Every run is warmed up with one short request, then evaluates
the same problems greedily with the teacher prompt style and the cache off; only the answering is timed (model
loading and server start are not). Prints a table and writes JSON to bench/results/eval_batching.json, one entry
per engine (running one engine keeps the other's numbers). Greedy answers should not depend on the batch size;
the table shows how many answers and verdicts agree with the first size's.

On a machine whose cores are shared with other work, torch's default of one OpenMP thread per core can make
small matrix products far slower (threads wait on each other while descheduled); `--torch-threads 1` measures
without that effect, and the thread count is recorded with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULTS = {  # engine -> model, problems, max_tokens
    "hf": ("hf:offline:smollm2-135m-instruct", 32, 128),
    "llamaserver": ("llamaserver:offline:qwen2.5-coder-0.5b-instruct", 48, 256),
}


def _evaluate_timed(client, model: str, problems, bench: str, max_tokens: int) -> tuple[object, float, float]:
    from rdistill.evaluate.options import EvalOptions
    from rdistill.evaluate.runner import evaluate
    from rdistill.teachers.base import Request, SamplingParams

    loading = time.perf_counter()
    client.complete(Request.chat("Hello", params=SamplingParams(max_tokens=1)))  # load + warm up, untimed
    loading = time.perf_counter() - loading
    started = time.perf_counter()
    run = evaluate(model, problems, bench=bench, client=client,
                   options=EvalOptions(max_tokens=max_tokens, faithfulness_n=0, prompt_style="teacher"))
    return run, time.perf_counter() - started, loading


def run_one(model: str, problems, bench: str, batch_size: int, max_tokens: int, engine: str = "hf",
            threads: int | None = None) -> dict:
    from rdistill.evaluate.runner import close_client, open_model
    from rdistill.teachers import make_teacher

    if engine == "llamaserver":
        # N slots on the server and N requests in flight from the client.
        client = make_teacher(model, cache=False, concurrency=batch_size,
                              backend_options={"slots": batch_size, **({"threads": threads} if threads else {})})
    else:
        client = open_model(model, cache=False, batch_size=batch_size)
    try:
        run, seconds, loading = _evaluate_timed(client, model, problems, bench, max_tokens)
        extra = {}
        if engine == "llamaserver":
            extra = {"slots": client.backend.slots, "concurrency": client.concurrency,
                     "threads": client.backend.threads, "ctx_per_slot": client.backend.ctx_per_slot}
    finally:
        close_client(client)
    tokens = sum(r.usage.completion_tokens for r in run.results)
    errors = sum(1 for r in run.results if r.metadata.get("error"))
    return {"batch_size": batch_size, **extra, "seconds": seconds, "load_seconds": loading,
            "completion_tokens": tokens, "prompt_tokens": sum(r.usage.prompt_tokens for r in run.results),
            "tokens_per_second": tokens / seconds, "problems_per_second": len(problems) / seconds,
            "errors": errors, "accuracy": run.summary["accuracy"]["accuracy"],
            "predictions": [r.prediction for r in run.results], "verdicts": [r.correct for r in run.results]}


def _host(engine: str, args) -> dict:
    host = {"cpus": os.cpu_count(), "machine": platform.machine(), "load_average": os.getloadavg()}
    if engine == "hf":
        import torch

        host["torch_threads"] = torch.get_num_threads()
    return host


def _load_results(path: Path) -> dict:
    """The results file as {engine: report}; a file from before engines existed holds one hf report."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if "runs" in data and "model" in data:
        return {"hf": data}
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=sorted(DEFAULTS), default="hf")
    parser.add_argument("--model", default=None, help="default: SmolLM2 (hf) or Qwen2.5-Coder-0.5B (llamaserver)")
    parser.add_argument("--bench", default="synth:arithmetic", help="a benchmark name or synth:TASK")
    parser.add_argument("--path", default=None, help="local benchmark file or folder")
    parser.add_argument("--n", type=int, default=None, help="problems (default: 32 hf, 48 llamaserver)")
    parser.add_argument("--batch-sizes", default="1,16",
                        help="comma-separated; the first is the reference. llamaserver: slots = requests in flight")
    parser.add_argument("--max-tokens", type=int, default=None, help="default: 128 hf, 256 llamaserver")
    parser.add_argument("--torch-threads", type=int, default=None, help="hf: torch.set_num_threads (default: torch's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="llamaserver: llama-server --threads (default: RDISTILL_THREADS or one per CPU)")
    parser.add_argument("--out", type=Path, default=RESULTS / "eval_batching.json")
    args = parser.parse_args()
    model_default, n_default, tokens_default = DEFAULTS[args.engine]
    model = args.model or model_default
    n = args.n or n_default
    max_tokens = args.max_tokens or tokens_default

    if args.engine == "hf" and args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)

    from rdistill.evaluate.problems import load_problems

    problems = load_problems(args.bench, path=args.path, limit=n, steps="1-4")
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    load_before = os.getloadavg()
    runs = [run_one(model, problems, args.bench, size, max_tokens, engine=args.engine, threads=args.threads)
            for size in sizes]
    reference = runs[0]
    host = _host(args.engine, args)
    host["load_average_before"] = load_before
    threads = (f"{runs[0].get('threads')} llama-server threads" if args.engine == "llamaserver"
               else f"{host.get('torch_threads')} torch threads")
    print(f"{model} on {len(problems)} {args.bench} problems, greedy, teacher prompt, max_tokens {max_tokens}, "
          f"{os.cpu_count()} CPUs ({platform.machine()}), {threads}")
    label = "slots" if args.engine == "llamaserver" else "batch"
    print(f"{label:>5} {'seconds':>8} {'tokens':>7} {'tok/s':>7} {'speed-up':>8} {'same answers':>12} "
          f"{'same verdicts':>13} {'accuracy':>9}")
    for run in runs:
        run["speedup"] = reference["seconds"] / run["seconds"]
        run["same_as_reference"] = sum(a == b for a, b in zip(run["predictions"], reference["predictions"]))
        run["same_verdicts_as_reference"] = sum(a == b for a, b in zip(run["verdicts"], reference["verdicts"]))
        print(f"{run['batch_size']:>5} {run['seconds']:>8.1f} {run['completion_tokens']:>7} "
              f"{run['tokens_per_second']:>7.1f} {run['speedup']:>7.2f}x "
              f"{run['same_as_reference']:>5}/{len(problems):<6} "
              f"{run['same_verdicts_as_reference']:>6}/{len(problems):<6} "
              f"{run['accuracy']['value']:>8.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"engine": args.engine, "model": model, "bench": args.bench, "n": len(problems),
              "max_tokens": max_tokens, "prompt_style": "teacher", "decoding": "greedy", "cache": False,
              "host": host,
              "runs": [{k: v for k, v in run.items() if k not in ("predictions", "verdicts")} for run in runs]}
    results = _load_results(args.out)
    results[args.engine] = report
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out} ({args.engine})")


if __name__ == "__main__":
    main()
