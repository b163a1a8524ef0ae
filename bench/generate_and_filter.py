"""Acceptance 1, end to end through the CLI: generate chain-of-thought traces with the offline 1.5B teacher,
filter them with arithmetic checking on, prove that what was kept checks out, and that a second run is free.

    python bench/generate_and_filter.py [--n 100] [--samples 3] [--base-url http://127.0.0.1:PORT/v1]

The command sequence it runs (W is a work folder, T the teacher):

    rdistill data synth --task arithmetic --n 100 --steps 1-6 --seed 0 --split train -o W/problems.jsonl
    rdistill generate W/problems.jsonl -o W/traces.jsonl --teacher T --strategy cot --samples 3 --ledger W/run1.json
    rdistill filter W/traces.jsonl -o W/kept.jsonl --report W/report.json --rejected W/rejected.jsonl
    rdistill generate W/problems.jsonl -o W/traces-again.jsonl --teacher T ... --ledger W/run2.json   (0 calls)

T is Qwen2.5-Coder-1.5B-Instruct (the offline catalog's GGUF) served by llama.cpp's llama-server, as
`openai:qwen2.5-coder-1.5b-instruct@URL`: the same weights as `offline:qwen2.5-coder-1.5b-instruct`, but
served with parallel slots. The response cache key holds the provider and model name, not the URL, so every
bench that serves it this way (bench/adaptive_vs_fixed.py too) shares the default response cache
($RDISTILL_CACHE/responses.sqlite) and a rerun costs no calls. Without --base-url the script starts its own
server and stops it at the end.

Then every kept trace is re-checked here with `rdistill.steps.check_steps` (no wrong claim may remain), and
the share of kept traces that are terse (every step a bare "a op b = c" line) is counted.
Prints the report's counts by reason and writes bench/results/generate_and_filter.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]  # runs from a checkout, no install needed

from rdistill.jsonl import read_records  # noqa: E402
from rdistill.records import Trace  # noqa: E402
from rdistill.steps import check_steps  # noqa: E402

MODEL = "qwen2.5-coder-1.5b-instruct"

# A terse trace is only calculation lines ("Step N: a op b = c", the numbers optionally with $, commas,
# decimals and brackets) and the final "The answer is X." line. Judged on the reasoning's lines rather than
# `Trace.steps`, whose splitter leaves "Step 1:" on a one-step trace and counts "Step 2: The answer is 5." as a step.
_NUMBER = r"\$?-?\d[\d,]*(?:\.\d+)?"
_CALCULATION = re.compile(rf"^(?:step\s*\d+\s*[:.]\s*)?[(\s]*{_NUMBER}[)\s]*(?:[-+*/×÷x][(\s]*{_NUMBER}[)\s]*)+"
                          rf"=\s*{_NUMBER}\s*\.?$", re.IGNORECASE)
_ANSWER_LINE = re.compile(r"^(?:step\s*\d+\s*[:.]\s*)?the answer is\b", re.IGNORECASE)


@contextmanager
def served_teacher(base_url: str | None, threads: int, parallel: int):
    """The teacher spec: a running server at `base_url`, or a llama-server started (and stopped) here."""
    if base_url:
        yield f"openai:{MODEL}@{base_url}"
        return
    from support.llama_server import start_server

    from rdistill.models.catalog import model_path

    server = start_server(model=model_path(MODEL), parallel=parallel, threads=threads, ctx_per_slot=1024,
                          ready_timeout_s=600)
    try:
        yield f"openai:{MODEL}@{server.base_url}"
    finally:
        server.stop()


def rdistill(*args: str) -> float:
    """Run one CLI command (this checkout's code); returns its wall seconds. A failing command ends the bench."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rdistill", *args], check=True, env=env)
    return time.perf_counter() - started


def ledger_totals(path: Path) -> dict:
    models = json.loads(path.read_text())["models"]
    keys = ("calls", "cache_hits", "prompt_tokens", "completion_tokens")
    return {k: sum(m[k] for m in models.values()) for k in keys}


def is_terse(trace: Trace) -> bool:
    lines = [line.strip() for line in trace.reasoning.splitlines() if line.strip()]
    calculations = [line for line in lines if not _ANSWER_LINE.match(line)]
    return bool(calculations) and all(_CALCULATION.match(line) for line in calculations)


def recheck(kept: list[Trace]) -> dict:
    """Re-run the step checker on every kept trace: the filter must not have let a wrong claim through."""
    wrong, checked_steps, steps = [], 0, 0
    for trace in kept:
        report = check_steps(trace.reasoning)
        checked_steps += report.n_checked_steps
        steps += report.n_steps
        if report.wrong_claims:
            wrong.append({"problem_id": trace.problem_id, "sample_index": trace.sample_index,
                          "claim": report.wrong_claims[0].text})
    return {"kept_with_a_wrong_claim": len(wrong), "examples": wrong[:5], "steps": steps,
            "checked_steps": checked_steps}


def _texts(traces: list[Trace]) -> dict:
    return {t.key: t.reasoning for t in traces}  # by key: problems finish, and are written, in any order


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="number of arithmetic problems")
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--steps", default="1-6")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--base-url", help="a running llama-server serving the 1.5B GGUF (…/v1); default: start one")
    # One decode thread: with the two cores shared with other jobs, two threads ran 7x slower (1.4 vs 10 tok/s,
    # one request of 48 tokens) because each token waits for the slower thread. Raise it on an idle machine.
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--parallel", type=int, default=4, help="llama-server slots, and the calls kept in flight")
    ap.add_argument("--workdir", type=Path, help="keep the files here (default: a temporary folder)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "generate_and_filter.json")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp, served_teacher(args.base_url, args.threads, args.parallel) as teacher:
        w = args.workdir or Path(tmp)
        w.mkdir(parents=True, exist_ok=True)
        for name in ("traces.jsonl", "traces-again.jsonl"):  # a fresh start: the second run must be the cache's
            (w / name).unlink(missing_ok=True)
        problems = w / "problems.jsonl"
        rdistill("data", "synth", "--task", "arithmetic", "--n", str(args.n), "--steps", args.steps,
                 "--seed", str(args.seed), "--split", "train", "-o", str(problems))
        generate = ["generate", str(problems), "--teacher", teacher, "--strategy", "cot",
                    "--samples", str(args.samples), "--concurrency", str(args.parallel), "--no-progress"]
        first_s = rdistill(*generate, "-o", str(w / "traces.jsonl"), "--ledger", str(w / "run1.json"))
        rdistill("filter", str(w / "traces.jsonl"), "-o", str(w / "kept.jsonl"), "--report", str(w / "report.json"),
                 "--rejected", str(w / "rejected.jsonl"), "--check-arithmetic")
        second_s = rdistill(*generate, "-o", str(w / "traces-again.jsonl"), "--ledger", str(w / "run2.json"))

        first, second = ledger_totals(w / "run1.json"), ledger_totals(w / "run2.json")
        report = json.loads((w / "report.json").read_text())
        kept = list(read_records(w / "kept.jsonl", Trace))
        traces = list(read_records(w / "traces.jsonl", Trace))
        again = list(read_records(w / "traces-again.jsonl", Trace))
        checks = recheck(kept)

    terse = sum(is_terse(t) for t in kept)
    result = {
        "bench": "generate_and_filter", "teacher": teacher.split("@")[0], "served_by": "llama-server",
        "n_problems": args.n, "samples": args.samples, "steps": args.steps, "seed": args.seed, "split": "train",
        "traces": len(traces), "kept": report["kept"], "dropped": report["dropped"],
        "dropped_by_reason": report["dropped_by_reason"], "flagged_by_reason": report["flagged_by_reason"],
        "problems_with_a_kept_trace": len({t.problem_id for t in kept}),
        "recheck": checks,
        "kept_terse": terse, "kept_terse_share": round(terse / len(kept), 4) if kept else None,
        "first_run": {**first, "seconds": round(first_s, 1),
                      "trace_completion_tokens": sum(t.usage.completion_tokens for t in traces)},
        "second_run": {**second, "seconds": round(second_s, 1), "traces": len(again),
                       "same_text_as_first": _texts(again) == _texts(traces)},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "threads": args.threads,
                    "parallel": args.parallel},
    }
    print(f"{args.n} problems x {args.samples} samples: {len(traces)} traces, kept {report['kept']}, "
          f"dropped {report['dropped']}")
    for reason, count in report["dropped_by_reason"].items():
        print(f"  dropped {reason:<24} {count}")
    print(f"kept traces re-checked: {checks['kept_with_a_wrong_claim']} with a wrong claim "
          f"({checks['checked_steps']} of {checks['steps']} steps checkable); terse {terse}/{len(kept)}")
    print(f"first run: {first['calls']} calls, {first['cache_hits']} cache hits, {first['completion_tokens']} "
          f"completion tokens, {first_s:.0f}s; second run: {second['calls']} calls, {second['cache_hits']} cache hits")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    if checks["kept_with_a_wrong_claim"] or second["calls"]:
        sys.exit("acceptance failed: a kept trace has a wrong step, or the second run called the teacher")


if __name__ == "__main__":
    main()
