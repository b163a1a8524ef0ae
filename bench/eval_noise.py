"""Run-to-run noise of one evaluation: the same model, the same problems, greedy, twice. How much of a difference
between two results is the evaluation itself?

    python bench/eval_noise.py                   # the quickstart's untrained student on its 100 held-out problems
    python bench/eval_noise.py --limit 8 --out /tmp/eval_noise.json        # a quick check that it works
    python bench/eval_noise.py --model llamaserver:runs/quickstart/train/cot_sft --prompt-style trained

Defaults come from the embedded quickstart recipe (rdistill.pipeline.recipe.load_quickstart), so the bench follows
it: the model is `student.baseline_model` (llamaserver:offline:qwen2.5-coder-0.5b-instruct) served with
`student.backend_options`, the problems are the `heldout` evaluation set (synth arithmetic n=100, steps 1-4, seed 0,
split test), the decoding is `eval` (greedy, max_tokens 192) and the prompt is the teacher prompt, the one the
quickstart's baseline is used with on held-out problems. The faithfulness probes are off (they change no answer).

Each run gets its own llama-server (fresh process, empty KV cache; `--same-server` keeps one for both runs) with
parallel slots and requests in flight as the pipeline has them, and the response cache is OFF for both runs, so both
really decode. Greedy decoding on llama-server is not bit-exact from run to run: which requests share a batch, and
so the order of floating-point sums, depends on timing (and on the adaptive concurrency where the client has it).
Prints a table and writes bench/results/eval_noise.json: n, each run's accuracy and seconds, how many raw texts,
extracted answers and verdicts differ (with the differing problems), the paired difference run 2 - run 1 (95%
interval, exact McNemar p), slots, threads, machine (nproc, CPU), date, load averages and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]  # runs from a checkout, no install needed

RESULTS = ROOT / "bench" / "results"

from pipeline_stages import cpu_flags, cpu_model  # noqa: E402  (the bench folder is on sys.path: this script's own)


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict:
    info = {"nproc": os.cpu_count(), "cpu": cpu_model(), "cpu_flags": cpu_flags(), "machine": platform.machine(),
            "platform": platform.platform(), "python": platform.python_version()}
    if hasattr(os, "sched_getaffinity"):
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    return info


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def one_run(model: str, problems, options, backend_options: dict, client=None) -> dict:
    """Evaluate once with the response cache off; a given client (--same-server) is used and left open."""
    from rdistill.evaluate.runner import close_client, evaluate
    from rdistill.teachers import make_teacher

    own = client is None
    if own:
        client = make_teacher(model, cache=False, backend_options=backend_options)
    load_before = load_average()
    started = time.perf_counter()
    try:
        run = evaluate(model, problems, bench="heldout", options=options, client=client)
        seconds = time.perf_counter() - started
        backend = client.backend
        serving = {"slots": getattr(backend, "slots", None), "threads": getattr(backend, "threads", None),
                   "ctx_per_slot": getattr(backend, "ctx_per_slot", None), "concurrency": client.concurrency,
                   "concurrency_changes": len(getattr(client, "concurrency_changes", []) or [])}
    finally:
        if own:
            close_client(client)
    results = sorted((r for r in run.results if r.sample_index == 0), key=lambda r: r.problem_id)
    return {"seconds": round(seconds, 1), "load_average_before": load_before, "load_average_after": load_average(),
            "accuracy": run.summary["accuracy"]["accuracy"],
            "completion_tokens": sum(r.usage.completion_tokens for r in results),
            "cached": sum(1 for r in results if r.usage.cached),
            "errors": sum(1 for r in results if r.metadata.get("error")),
            "cut_off": sum(1 for r in results if r.truncated), **serving, "_results": results}


def first_difference(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def compare(first: list, second: list) -> dict:
    from rdistill.stats import paired_difference

    if [r.problem_id for r in first] != [r.problem_id for r in second]:
        raise SystemExit("the two runs answered different problems")
    differing = []
    for a, b in zip(first, second):
        if a.prediction != b.prediction or a.extracted != b.extracted or a.correct != b.correct:
            differing.append({"id": a.problem_id, "steps": a.difficulty, "extracted": [a.extracted, b.extracted],
                              "correct": [a.correct, b.correct], "chars": [len(a.prediction), len(b.prediction)],
                              "first_different_char": first_difference(a.prediction, b.prediction)})
    paired = paired_difference([r.correct for r in second], [r.correct for r in first])
    return {"texts_differ": sum(a.prediction != b.prediction for a, b in zip(first, second)),
            "answers_differ": sum(a.extracted != b.extracted for a, b in zip(first, second)),
            "verdicts_differ": sum(a.correct != b.correct for a, b in zip(first, second)),
            "paired_run2_minus_run1": paired, "differing": differing}


def pct(acc: dict) -> str:
    if acc.get("value") is None:
        return "-"
    lo, hi = acc.get("ci") or (None, None)
    interval = f" [{lo:.0%}-{hi:.0%}]" if lo is not None else ""
    return f"{acc['value']:.0%}{interval}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None,
                    help="model string (default: the quickstart's student.baseline_model, the untrained student)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N of the 100 held-out problems")
    ap.add_argument("--prompt-style", default="teacher", choices=["plain", "teacher", "trained"],
                    help="default: teacher (the quickstart baseline's prompt on held-out); trained for a student")
    ap.add_argument("--max-tokens", type=int, default=None, help="default: the quickstart's eval.max_tokens (192)")
    ap.add_argument("--slots", type=int, default=None,
                    help="llama-server slots (default: the quickstart's student.backend_options, else the backend's)")
    ap.add_argument("--threads", type=int, default=None,
                    help="llama-server threads (default: RDISTILL_THREADS or one per CPU)")
    ap.add_argument("--same-server", action="store_true", help="both runs on one llama-server (default: one each)")
    ap.add_argument("--out", type=Path, default=RESULTS / "eval_noise.json")
    args = ap.parse_args()

    from dataclasses import replace

    import rdistill
    from rdistill.pipeline.recipe import eval_options, load_quickstart
    from rdistill.pipeline.stages import describe_source, load_source

    recipe = load_quickstart().recipe
    model = args.model or recipe.student.baseline_model or recipe.student.model
    source = recipe.data.eval["heldout"]
    problems = load_source(source, default_split="test")
    label = f"quickstart heldout: {describe_source(source)} split={source.split}"
    if args.limit is not None:
        if args.limit < 1:
            raise SystemExit("--limit must be at least 1")
        problems = problems[:args.limit]
    options = replace(eval_options(recipe, "baseline" if args.prompt_style != "trained" else "student",
                                   args.prompt_style), faithfulness_n=0)
    if args.max_tokens is not None:
        options = replace(options, max_tokens=args.max_tokens)
    backend_options = dict(recipe.student.backend_options)
    if args.slots is not None:
        backend_options["slots"] = args.slots
    if args.threads is not None:
        backend_options["threads"] = args.threads

    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    print(f"{model}: {len(problems)} problems ({label}), greedy, {args.prompt_style} prompt, "
          f"max_tokens {options.max_tokens}, response cache off, "
          f"{'one llama-server for both runs' if args.same_server else 'a fresh llama-server per run'}", flush=True)
    shared = None
    if args.same_server:
        from rdistill.teachers import make_teacher

        shared = make_teacher(model, cache=False, backend_options=backend_options)
    try:
        runs = []
        for i in (1, 2):
            print(f"run {i} ...", flush=True)
            runs.append(one_run(model, problems, options, backend_options, client=shared))
    finally:
        if shared is not None:
            from rdistill.evaluate.runner import close_client

            close_client(shared)
    diff = compare(runs[0].pop("_results"), runs[1].pop("_results"))
    n = len(problems)

    print(f"\nslots {runs[0]['slots']}, llama-server threads {runs[0]['threads']}, requests in flight "
          f"{runs[0]['concurrency']}; {os.cpu_count()} CPUs ({cpu_model()})")
    print(f"{'run':>3} {'accuracy':>16} {'seconds':>8} {'tokens':>7} {'cut off':>7} {'errors':>6} {'load before':>11}")
    for i, r in enumerate(runs, 1):
        print(f"{i:>3} {pct(r['accuracy']):>16} {r['seconds']:>8.1f} {r['completion_tokens']:>7} {r['cut_off']:>7} "
              f"{r['errors']:>6} {r['load_average_before'][0]:>11.2f}")
    p = diff["paired_run2_minus_run1"]
    print(f"differ between the runs: raw texts {diff['texts_differ']}/{n}, extracted answers "
          f"{diff['answers_differ']}/{n}, verdicts {diff['verdicts_differ']}/{n}")
    print(f"run 2 - run 1: {p['difference'] * 100:+.0f} points [{p['ci'][0] * 100:+.0f}, {p['ci'][1] * 100:+.0f}], "
          f"exact McNemar p={p['p_value']:.3g}")

    report = {
        "bench": "eval_noise", "model": model, "problems": label, "limit": args.limit, "n": n,
        "prompt_style": args.prompt_style, "decoding": options.decoding(), "faithfulness_n": 0,
        "response_cache": False, "same_server": args.same_server, "backend_options": backend_options,
        "slots": runs[0]["slots"], "threads": runs[0]["threads"], "concurrency": runs[0]["concurrency"],
        "runs": runs,
        "accuracy": [r["accuracy"]["value"] for r in runs],
        "texts_differ": diff["texts_differ"], "answers_differ": diff["answers_differ"],
        "verdicts_differ": diff["verdicts_differ"], "paired_run2_minus_run1": diff["paired_run2_minus_run1"],
        "differing": diff["differing"],
        "machine": machine(), "date": date,
        "load_average": {"before": runs[0]["load_average_before"], "after": runs[1]["load_average_after"]},
        "command": shlex.join(["python", *sys.argv]), "git": git_revision(), "rdistill": rdistill.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
