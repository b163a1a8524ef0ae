"""Run a model on problems and judge its answers: `evaluate(...)` -> EvalRun (results + summary).

Any model a teacher string names can be evaluated (`openai:…`, `anthropic:…`, `llamacpp:…`, `offline:…`,
`hf:…`, or a trained student's folder). Calls go through TeacherClient, so they share the response cache with
generation (a rerun costs nothing), local `hf:` models get batched generation (`complete_batch`, batch_size rows
at a time) and API or llama-server models get concurrent requests. Decoding is greedy unless several samples
are asked for. Answers are judged by the shared checker (rdistill.answers), so evaluation agrees with the
data filters and training rewards on what "correct" means.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rdistill.answers import check
from rdistill.evaluate.accuracy import accuracy_summary
from rdistill.evaluate.metrics import (QualityItem, aggregate_quality, generate_with_progress, measure_quality,
                                      step_metrics)
from rdistill.evaluate.options import EvalOptions
from rdistill.evaluate.problems import problem_steps
from rdistill.evaluate.prompts import build_messages, prompt_fingerprint
from rdistill.records import EvalResult, Problem, Usage
from rdistill.teachers.base import Completion, Request, SamplingParams

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
DEFAULT_BATCH_SIZE = 16


@dataclass
class EvalRun:
    results: list[EvalResult]
    summary: dict

    def write(self, output: str | Path) -> tuple[Path, Path]:
        """The results as JSONL at `output` and the summary beside it (`NAME.summary.json`), both atomically."""
        import json

        from rdistill.jsonl import atomic_writer, write_records

        output = Path(output)
        write_records(output, self.results)
        summary_path = summary_path_for(output)
        with atomic_writer(summary_path) as fh:
            json.dump(self.summary, fh, indent=2, ensure_ascii=False)
        return output, summary_path


def summary_path_for(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name.removesuffix(".jsonl") + ".summary.json")


def open_model(spec: str, *, cache: bool | str | Path | None = True, batch_size: int = DEFAULT_BATCH_SIZE,
               concurrency: int | None = None, budget_usd: float | None = None):
    """A TeacherClient for `spec`; `hf:` models (and student folders) batch `batch_size` rows per forward pass."""
    from rdistill.teachers import make_teacher
    from rdistill.teachers.registry import parse_spec

    prefix, _ = parse_spec(spec)
    backend_options = {"batch_size": batch_size} if prefix == "hf" else {}
    return make_teacher(spec, cache=cache, concurrency=concurrency, budget_usd=budget_usd,
                        backend_options=backend_options)


def evaluate(model: str, problems: list[Problem], *, bench: str, options: EvalOptions = EvalOptions(),
             cache: bool | str | Path | None = True, batch_size: int = DEFAULT_BATCH_SIZE,
             concurrency: int | None = None, client=None, judge_client=None,
             progress: Progress | None = None) -> EvalRun:
    """Evaluate the model named `model` on `problems`.

    `client` is an already open TeacherClient for that model (the caller keeps and closes it), else one is
    opened here and closed at the end. The judge (`options.judge`, or an open `judge_client`) scores the steps
    the arithmetic checker cannot check; it is optional. `progress(phase, done, total)` is called as results
    arrive (the CLI draws bars from it).
    """
    if not problems:
        from rdistill.errors import InputError

        raise InputError("no problems to evaluate", field="bench")
    _check_unique_ids(problems)
    opened = []
    try:
        if client is None:
            client = open_model(model, cache=cache, batch_size=batch_size, concurrency=concurrency)
            opened.append(client)
        if judge_client is None and options.judge:
            judge_client = open_model(options.judge, cache=cache, concurrency=concurrency)
            opened.append(judge_client)
        return _evaluate(client, model, problems, bench, options, judge_client, progress)
    finally:
        for c in opened:
            close_client(c)


def _evaluate(client, model_name: str, problems: list[Problem], bench: str, options: EvalOptions, judge_client,
              progress: Progress | None) -> EvalRun:
    started = time.perf_counter()
    prompt_format, messages, requests = _prompts(model_name, problems, options)
    completions = generate_with_progress(client, requests, "answers", progress)
    run_info = _run_info(client, model_name, options, prompt_format)
    results = [_to_result(problems[i // options.samples], i % options.samples, completion, bench, run_info)
               for i, completion in enumerate(completions)]
    generation_seconds = time.perf_counter() - started

    subset = [r for r in results if r.sample_index == 0][:options.faithfulness_n]
    if subset:
        by_id = {p.id: p for p in problems}
        items = [QualityItem(by_id[r.problem_id], messages[r.problem_id], r) for r in subset
                 if not r.metadata.get("error")]
        quality = measure_quality(client, items, truncation_points=options.truncation_points,
                                  early_answer_tokens=options.early_answer_tokens, max_tokens=options.max_tokens,
                                  judge_client=judge_client, progress=progress)
        for result in subset:
            if result.problem_id in quality:
                result.metadata["quality"] = quality[result.problem_id]
    summary = build_summary(results, run_info, bench=bench, options=options, ledger=client.ledger.summary(),
                            generation_seconds=generation_seconds, total_seconds=time.perf_counter() - started,
                            judge=judge_client.name if judge_client is not None else None)
    return EvalRun(results, summary)


def _prompts(model_name: str, problems: list[Problem], options: EvalOptions):
    """(the trained prompt format or None, {problem id: messages}, the requests in problem x sample order)."""
    params = SamplingParams(temperature=options.effective_temperature, top_p=options.top_p,
                            max_tokens=options.max_tokens, seed=options.seed)
    prompt_format = trained_prompt_format(model_name, options.student_task) if options.style == "trained" else None
    messages = {p.id: build_messages(p, options.prompt_style, options.system_prompt, prompt_format=prompt_format)
                for p in problems}
    requests = [Request(messages[p.id], params, sample_index=k) for p in problems for k in range(options.samples)]
    return prompt_format, messages, requests


def answer_ahead(client, model_name: str, jobs: list[tuple[list[Problem], EvalOptions]],
                 progress: Progress | None = None) -> dict:
    """Ask `client` every question of several evaluations (sets, prompts) in one queue, for the response cache.

    Evaluated one after another, each set ends with a drain: its last answers run while the other slots of a
    parallel server idle. Queued together, the slots stay full until the last set's end; `evaluate` then takes each
    set's answers from the cache. Needs a client with a response cache. A request that fails here is simply asked
    again by `evaluate`. Returns {"requests", "failed", "seconds"}."""
    if getattr(client, "cache", None) is None:
        raise ValueError("answer_ahead needs a client with a response cache: evaluate would ask everything again")
    started = time.perf_counter()
    requests, seen = [], set()
    for problems, options in jobs:
        for request in _prompts(model_name, problems, options)[2]:
            key = request.cache_key(client.backend.provider, client.backend.model)
            if key not in seen:
                seen.add(key)
                requests.append(request)
    completions = generate_with_progress(client, requests, "answers, all sets", progress)
    failed = sum(1 for c in completions if isinstance(c, BaseException))
    return {"requests": len(requests), "failed": failed, "seconds": round(time.perf_counter() - started, 3)}


def trained_prompt_format(model: str, task: str | None = None):
    """The prompt format of the student folder that `model` names (bare folder or PREFIX:FOLDER), asking through
    `task` when given (one of a multi-task student's tasks), else the way the method answers."""
    from rdistill.errors import InputError
    from rdistill.train.prompting import RUN_CONFIG_FILE, load_prompt_format

    folder = Path(model.split(":", 1)[1] if ":" in model and not Path(model).is_dir() else model)
    if not (folder / RUN_CONFIG_FILE).is_file():
        raise InputError(f"the trained prompt style needs a student folder made by `rdistill train` (with "
                         f"{RUN_CONFIG_FILE}); {model!r} is not one: use --prompt-style teacher or plain",
                         field="prompt_style")
    prompt_format = load_prompt_format(folder)
    return prompt_format.for_task(task) if task is not None else prompt_format


def _check_unique_ids(problems: list[Problem]) -> None:
    seen: set[str] = set()
    for p in problems:
        if p.id in seen:
            from rdistill.errors import InputError

            raise InputError(f"problem id {p.id!r} appears twice: results are matched across models by id",
                             field="id")
        seen.add(p.id)


def _run_info(client, model_name: str, options: EvalOptions, prompt_format) -> dict:
    """What every result records about how it was made; `prompt_format` is the trained student's (else None)."""
    backend = client.backend
    return {"model_id": client.name, "provider": backend.provider, "local": bool(backend.local),
            "prompt_style": options.style,
            "prompt_id": prompt_fingerprint(options.style, options.system_prompt, prompt_format=prompt_format),
            "student_task": options.student_task,
            "decoding": options.decoding(), "role": options.role, "host": host_info(),
            "batch_size": getattr(backend, "batch_size", None), "concurrency": client.concurrency,
            **({"prompt_choice": options.prompt_choice} if options.prompt_choice else {}),
            "model": model_name}


def _to_result(problem: Problem, sample_index: int, completion: Completion | BaseException, bench: str,
               run_info: dict) -> EvalResult:
    metadata = {"run": {k: v for k, v in run_info.items() if k != "model"}}
    if isinstance(completion, BaseException):
        log.warning("%s: no answer for %s: %s", run_info["model_id"], problem.id, completion)
        text, usage, verdict, truncated = "", Usage(), None, None
        metadata["error"] = f"{type(completion).__name__}: {completion}"
    else:
        text = completion.text
        usage = Usage(prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
                      cost_usd=completion.cost_usd, seconds=completion.seconds, cached=completion.cached,
                      cached_prompt_tokens=completion.cached_prompt_tokens)
        verdict = check(text, problem.answer, problem.answer_type, problem.choices)
        metadata["finish_reason"] = completion.finish_reason
        truncated = was_cut_off(completion, run_info["decoding"]["max_tokens"])
    steps = step_metrics(text)
    metadata["steps"] = steps
    return EvalResult(model=run_info["model"], bench=bench, problem_id=problem.id, question=problem.question,
                      answer=problem.answer, answer_type=problem.answer_type, choices=problem.choices,
                      prediction=text, extracted=verdict.extracted if verdict else None,
                      correct=bool(verdict and verdict.correct), sample_index=sample_index,
                      difficulty=problem_steps(problem), n_steps=steps["n_steps"], truncated=truncated, usage=usage,
                      metadata=metadata)


# What backends call stopping at the token limit: "length" (OpenAI, llama.cpp, llama-server, transformers),
# "max_tokens" (Anthropic).
LENGTH_FINISH_REASONS = frozenset({"length", "max_tokens"})


def was_cut_off(completion: Completion, max_tokens: int) -> bool:
    """Whether the answer stopped at max_tokens rather than ending by itself. A backend (or an old cache entry)
    that reports no finish reason is judged by its token count."""
    if completion.finish_reason is not None:
        return completion.finish_reason in LENGTH_FINISH_REASONS
    return completion.completion_tokens >= max_tokens


def build_summary(results: list[EvalResult], run_info: dict, *, bench: str, options: EvalOptions, ledger: dict,
                  generation_seconds: float, total_seconds: float, judge: str | None) -> dict:
    return {
        "model": run_info["model"], "bench": bench, **{k: v for k, v in run_info.items() if k != "model"},
        "options": options.to_dict(), "judge": judge,
        "accuracy": accuracy_summary(results), "quality": aggregate_quality(results),
        "throughput": throughput(results), "ledger": ledger,
        "seconds": {"answers": round(generation_seconds, 3), "total": round(total_seconds, 3)},
    }


def throughput(results: list[EvalResult]) -> dict:
    """Generated tokens per second of model time. Cached answers keep the seconds they took when first made,
    so the figure describes the model, not the cache; for batched models each row carries its batch's share."""
    timed = [r for r in results if r.usage.seconds > 0]
    tokens = sum(r.usage.completion_tokens for r in timed)
    seconds = sum(r.usage.seconds for r in timed)
    return {"completion_tokens": sum(r.usage.completion_tokens for r in results),
            "prompt_tokens": sum(r.usage.prompt_tokens for r in results),
            # of those, taken from the server's prompt cache: known only where the backend says (llama-server)
            "cached_prompt_tokens": sum(r.usage.cached_prompt_tokens or 0 for r in results),
            "model_seconds": round(seconds, 3), "tokens_per_second": tokens / seconds if seconds > 0 else None,
            "cached": sum(1 for r in results if r.usage.cached), "cost_usd": sum(r.usage.cost_usd for r in results)}


def host_info() -> dict:
    """Where throughput was measured: CPU count and architecture, and the GPU when torch is already loaded."""
    info = {"cpus": os.cpu_count(), "machine": platform.machine(), "accelerator": None}
    torch = sys.modules.get("torch")  # only asked when a local model already loaded it: importing costs seconds
    if torch is not None and torch.cuda.is_available():
        info["accelerator"] = torch.cuda.get_device_name(0)
    return info


def close_client(client) -> None:
    """Release a client's model (a local model frees its memory)."""
    try:
        asyncio.run(client.aclose())
    except RuntimeError:  # called inside a running loop: the backend is released when collected instead
        log.debug("could not close %s inside a running event loop", client.name)
