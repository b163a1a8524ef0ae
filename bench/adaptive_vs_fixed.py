"""Adaptive self-consistency against a fixed number of samples: what each costs and how good the kept traces are.

    python bench/adaptive_vs_fixed.py [--n 30] [--teacher offline:qwen2.5-coder-1.5b-instruct]

On N built-in arithmetic problems, the same teacher generates chain-of-thought traces twice:
- fixed: `--samples 5` per problem;
- adaptive: sample until the top answer holds a vote share >= 0.6 with 2+ agreeing samples, at most 5.
For each arm: teacher samples used, tokens, and the accuracy of the traces a majority filter keeps (traces that
agree with their problem's majority answer; accuracy = share of them whose answer equals gold), plus the
majority-vote accuracy per problem.

Sample k of a problem is the same request in both arms (same prompt, temperature, seed + k), so the adaptive
arm runs on the fixed arm's response cache: its samples are a prefix of the fixed arm's, byte for byte, and
the bench takes half the time. "samples" counts calls plus cache hits, so the comparison is unchanged.
Prints a table and writes bench/results/adaptive_vs_fixed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rdistill.data.synth import generate  # noqa: E402
from rdistill.generate import GenerationOptions, generate_traces  # noqa: E402
from rdistill.generate.store import read_traces_tolerant  # noqa: E402
from rdistill.teachers import make_teacher  # noqa: E402


def arm(name, problems, teacher, cache, options, out_path):
    client = make_teacher(teacher, cache=cache)
    started = time.perf_counter()
    summary = generate_traces(problems, client, "cot", options, out_path,
                              progress=lambda p: print(f"  {name}: {p.done}/{p.total} problems, {p.calls} calls",
                                                       file=sys.stderr, flush=True))
    seconds = time.perf_counter() - started
    traces = read_traces_tolerant(out_path)
    kept = [t for t in traces if t.metadata.get("agrees_with_majority")]
    majority = {t.problem_id: t.metadata.get("majority_correct") for t in traces}
    per_problem = {}
    for t in traces:
        per_problem[t.problem_id] = per_problem.get(t.problem_id, 0) + 1
    return {
        "arm": name,
        "problems": len(problems),
        "samples": summary.calls + summary.cache_hits,
        "fresh_calls": summary.calls,
        "prompt_tokens": sum(t.usage.prompt_tokens for t in traces),
        "completion_tokens": sum(t.usage.completion_tokens for t in traces),
        "traces": len(traces),
        "trace_accuracy": _share(sum(t.correct is True for t in traces), len(traces)),
        "kept_traces": len(kept),
        "kept_accuracy": _share(sum(t.correct is True for t in kept), len(kept)),
        "majority_accuracy": _share(sum(v is True for v in majority.values()), len(majority)),
        "samples_per_problem": sorted(per_problem.values()),
        "stop_reasons": _count(t.metadata.get("adaptive_stop") for t in traces if t.sample_index == 0),
        "seconds": round(seconds, 1),
    }


def _share(k, n):
    return round(k / n, 4) if n else None


def _count(values):
    out = {}
    for v in values:
        if v is not None:
            out[v] = out.get(v, 0) + 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30, help="number of arithmetic problems")
    ap.add_argument("--teacher", default="offline:qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--samples", type=int, default=5, help="fixed arm: samples; adaptive arm: the cap")
    ap.add_argument("--threshold", type=float, default=0.6)
    ap.add_argument("--steps", default="2-4", help="reasoning steps of the problems")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "adaptive_vs_fixed.json")
    args = ap.parse_args()

    lo, _, hi = args.steps.partition("-")
    problems = generate("arithmetic", args.n, seed=args.seed, split="test", steps=(int(lo), int(hi or lo)))
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache.sqlite"
        fixed = arm("fixed", problems, args.teacher, cache,
                    GenerationOptions(samples=args.samples, max_tokens=args.max_tokens, seed=args.seed),
                    Path(tmp) / "fixed.jsonl")
        adaptive = arm("adaptive", problems, args.teacher, cache,
                       GenerationOptions(adaptive=True, vote_threshold=args.threshold, max_samples=args.samples,
                                         max_tokens=args.max_tokens, seed=args.seed),
                       Path(tmp) / "adaptive.jsonl")
    rows = [fixed, adaptive]
    columns = ["arm", "problems", "samples", "completion_tokens", "kept_traces", "kept_accuracy",
               "majority_accuracy", "trace_accuracy"]
    print(" | ".join(f"{c:>17}" for c in columns))
    for row in rows:
        print(" | ".join(f"{str(row[c]):>17}" for c in columns))
    saved = 1 - adaptive["samples"] / fixed["samples"] if fixed["samples"] else 0.0
    print(f"adaptive used {saved:.0%} fewer samples; stop reasons: {adaptive['stop_reasons']}")
    result = {"bench": "adaptive_vs_fixed", "teacher": args.teacher, "n": args.n, "steps": args.steps,
              "samples": args.samples, "threshold": args.threshold, "max_tokens": args.max_tokens, "seed": args.seed,
              "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
              "arms": rows, "samples_saved": round(saved, 4)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
