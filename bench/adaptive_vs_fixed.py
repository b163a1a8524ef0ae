"""Adaptive self-consistency against a fixed number of samples: what each costs and how good the kept traces are.

    python bench/adaptive_vs_fixed.py [--n 50] [--base-url http://127.0.0.1:PORT/v1]

On N built-in arithmetic problems (test split, 2-5 steps), the 1.5B teacher (served as in
bench/generate_and_filter.py, sharing its response cache) generates chain-of-thought traces in three arms:
- fixed: `--samples 5` per problem;
- adaptive: `--adaptive --max-samples 5` with the default stopping rule (rdistill.generate.voting.StopRule);
- adaptive-gold: the same with `--adaptive-gold` (stop at the first sample that matches gold).
Sample k of a problem is the same request in every arm (same prompt, temperature, seed + k), so the fixed arm
runs first and the adaptive arms are answered from the persistent response cache: their samples are a prefix
of the fixed arm's, byte for byte, and a rerun of the whole bench costs no calls. "requests" counts calls plus
cache hits: what each arm would have paid on its own.

Other stopping rules are replayed on the fixed arm's samples with the same voting functions the generator runs
(exact, since every rule only ever takes a prefix): the rule before this one (a share >= 0.6 with two
agreeing samples), that rule with three agreeing samples, and the Beta criterion without the settled-lead stop.

Per arm: requests, tokens, and two filters over its traces.
- majority filter (no gold needed): keep the traces that agree with their problem's majority answer.
  "micro" accuracy is over kept traces, "macro" averages per problem (over problems with a kept trace).
  The acceptance criterion uses macro: the stopping rule decides per problem which answer is kept, and micro
  also weighs each problem by how many agreeing copies an arm keeps (5 for an easy problem in the fixed arm,
  3 in the adaptive one), which rewards spending more on easy problems rather than deciding better.
- gold filter (`rdistill filter` defaults: gold-correct answer and every step re-computes): kept traces, and
  the problems left with at least one (coverage). This is the usual case in distillation, where gold exists.
Prints a table and writes bench/results/adaptive_vs_fixed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]  # runs from a checkout, no install needed

from generate_and_filter import served_teacher  # noqa: E402  (bench/ is on sys.path when run as a script)

from rdistill.data.synth import generate  # noqa: E402
from rdistill.filter import FilterConfig, filter_traces  # noqa: E402
from rdistill.generate import GenerationOptions, generate_traces  # noqa: E402
from rdistill.generate.store import read_traces_tolerant  # noqa: E402
from rdistill.generate.voting import (StopRule, answers_of, first_round_size, majority_vote,  # noqa: E402
                                      next_round_size, stop_reason)
from rdistill.records import Problem, Trace  # noqa: E402
from rdistill.teachers import make_teacher  # noqa: E402


def run_arm(problems: list[Problem], teacher: str, options: GenerationOptions, out: Path,
            name: str) -> tuple[list[Trace], dict]:
    client = make_teacher(teacher, timeout_s=1800)  # the default response cache: shared and persistent
    started = time.perf_counter()
    summary = generate_traces(problems, client, "cot", options, out,
                              progress=lambda p: print(f"  {name}: {p.done}/{p.total} problems, {p.calls} calls",
                                                       file=sys.stderr, flush=True))
    cost = {"fresh_calls": summary.calls, "cache_hits": summary.cache_hits, "failures": summary.failures,
            "seconds": round(time.perf_counter() - started, 1)}
    return read_traces_tolerant(out), cost


def replay(problems: list[Problem], fixed: list[Trace], rule: StopRule) -> list[Trace]:
    """What adaptive sampling under `rule` would have taken: the same loop as the generator's, over the fixed
    arm's samples (sample k there is the request the adaptive run would have sent as sample k)."""
    by_key = {(t.problem_id, t.sample_index): t for t in fixed}
    taken: list[Trace] = []
    for problem in problems:
        traces: list[Trace] = []
        tried, batch = 0, first_round_size(rule, problem)
        while True:
            traces += [by_key[problem.id, k] for k in range(tried, tried + batch) if (problem.id, k) in by_key]
            tried += batch
            vote = majority_vote(answers_of(traces), problem)
            if stop_reason(vote, rule, tried) is not None:
                break
            batch = next_round_size(vote, rule, tried)
        taken += traces
    return taken


def measure(name: str, problems: list[Problem], traces: list[Trace], cost: dict | None = None) -> dict:
    by_problem: dict[str, list[Trace]] = {}
    for t in sorted(traces, key=lambda t: (t.problem_id, t.sample_index)):
        by_problem.setdefault(t.problem_id, []).append(t)
    kept: list[Trace] = []
    per_problem_accuracy, majority_right = [], 0
    for problem in problems:
        mine = by_problem.get(problem.id, [])
        vote = majority_vote(answers_of(mine), problem)
        agreeing = [t for i, t in enumerate(mine) if vote.labels[i] == 0]
        kept += agreeing
        majority_right += vote.majority_correct is True
        if agreeing:
            per_problem_accuracy.append(sum(t.correct is True for t in agreeing) / len(agreeing))
    gold_kept, _ = filter_traces(traces, FilterConfig())
    covered = len({t.problem_id for t in gold_kept})
    requests = len(traces) if cost is None else cost["fresh_calls"] + cost["cache_hits"]
    return {
        "arm": name, "problems": len(problems), "requests": requests,
        "prompt_tokens": sum(t.usage.prompt_tokens for t in traces),
        "completion_tokens": sum(t.usage.completion_tokens for t in traces),
        "traces": len(traces), "trace_accuracy": _share(sum(t.correct is True for t in traces), len(traces)),
        "kept_traces": len(kept),
        "kept_accuracy_micro": _share(sum(t.correct is True for t in kept), len(kept)),
        "kept_accuracy_macro": _share(sum(per_problem_accuracy), len(per_problem_accuracy)),
        "majority_accuracy": _share(majority_right, len(problems)),
        "gold_filter_kept": len(gold_kept), "gold_filter_problems": covered,
        "requests_per_covered_problem": round(requests / covered, 2) if covered else None,
        "samples_per_problem": dict(sorted(Counter(len(by_problem.get(p.id, [])) for p in problems).items())),
        "stop_reasons": dict(Counter(ts[0].metadata["adaptive_stop"] for ts in by_problem.values()
                                     if "adaptive_stop" in ts[0].metadata)),
        **({"cost": cost} if cost else {"cost": "replayed from the fixed arm's samples: no requests of its own"}),
    }


def _share(k: float, n: int) -> float | None:
    return round(k / n, 4) if n else None


def _per_problem_counts(traces: list[Trace]) -> dict[str, int]:
    return dict(Counter(t.problem_id for t in traces))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50, help="number of arithmetic problems")
    ap.add_argument("--samples", type=int, default=5, help="fixed arm: samples; adaptive arms: the cap")
    ap.add_argument("--threshold", type=float, default=0.7, help="--vote-threshold of the adaptive arms")
    ap.add_argument("--legacy-threshold", type=float, default=0.6, help="the replayed old rule's threshold")
    ap.add_argument("--steps", default="2-5", help="reasoning steps of the problems")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--teacher", help="a teacher spec instead of the served 1.5B (its cache entries are its own)")
    ap.add_argument("--base-url", help="a running llama-server serving the 1.5B GGUF (…/v1); default: start one")
    ap.add_argument("--threads", type=int, default=1, help="llama-server threads (see bench/generate_and_filter.py)")
    ap.add_argument("--parallel", type=int, default=4, help="llama-server slots, and the calls kept in flight")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "adaptive_vs_fixed.json")
    args = ap.parse_args()

    lo, _, hi = args.steps.partition("-")
    problems = generate("arithmetic", args.n, seed=args.seed, split="test", steps=(int(lo), int(hi or lo)))
    common = dict(max_tokens=args.max_tokens, seed=args.seed)
    adaptive = dict(adaptive=True, vote_threshold=args.threshold, max_samples=args.samples, **common)
    serving = nullcontext(args.teacher) if args.teacher else served_teacher(args.base_url, args.threads, args.parallel)
    with tempfile.TemporaryDirectory() as tmp, serving as teacher:
        tmp = Path(tmp)
        fixed, fixed_cost = run_arm(problems, teacher, GenerationOptions(samples=args.samples, **common),
                                    tmp / "fixed.jsonl", "fixed")
        default, default_cost = run_arm(problems, teacher, GenerationOptions(**adaptive), tmp / "adaptive.jsonl",
                                        "adaptive")
        gold, gold_cost = run_arm(problems, teacher, GenerationOptions(adaptive_gold=True, **adaptive),
                                  tmp / "gold.jsonl", "adaptive-gold")

    cap, t = args.samples, args.threshold
    replayed = {
        "old rule (share>=%.1f, 2 agree)" % args.legacy_threshold:
            StopRule(args.legacy_threshold, cap, False, confidence=0.0, settle=False),
        "old rule, 3 agree": StopRule(args.legacy_threshold, cap, False, confidence=0.0, settle=False,
                                      min_agreeing=3),
        "Beta 0.95 only": StopRule(t, cap, False, settle=False),
    }
    rows = [measure(f"fixed {cap}", problems, fixed, fixed_cost),
            measure("adaptive", problems, default, default_cost),
            measure("adaptive-gold", problems, gold, gold_cost)]
    rows += [measure(name, problems, replay(problems, fixed, rule)) for name, rule in replayed.items()]
    # The replay must agree with the generator on the rules it really ran, or the replayed rows mean nothing.
    replay_checks = {
        "adaptive": _per_problem_counts(replay(problems, fixed, StopRule(t, cap, False))) ==
        _per_problem_counts(default),
        "adaptive-gold": _per_problem_counts(replay(problems, fixed, StopRule(t, cap, True))) ==
        _per_problem_counts(gold),
    }

    columns = [("arm", 32), ("requests", 8), ("completion_tokens", 10), ("kept_traces", 6),
               ("kept_accuracy_micro", 7), ("kept_accuracy_macro", 7), ("majority_accuracy", 8),
               ("gold_filter_kept", 9), ("gold_filter_problems", 8)]
    headers = ["arm", "requests", "compl.tok", "kept", "micro", "macro", "majority", "gold-kept", "covered"]
    print(f"n = {args.n} problems (arithmetic, test split, steps {args.steps}), cap {cap}, "
          f"teacher {teacher.split('@')[0]}")
    print(" ".join(f"{h:>{w}}" if i else f"{h:<{w}}" for i, (h, (_, w)) in enumerate(zip(headers, columns))))
    for row in rows:
        print(" ".join(f"{str(row[c]):>{w}}" if i else f"{str(row[c]):<{w}}" for i, (c, w) in enumerate(columns)))
    base, ours = rows[0], rows[1]
    passes = ours["requests"] < base["requests"] and ours["kept_accuracy_macro"] >= base["kept_accuracy_macro"]
    print(f"adaptive: {1 - ours['requests'] / base['requests']:.0%} fewer requests, macro kept accuracy "
          f"{ours['kept_accuracy_macro']} vs {base['kept_accuracy_macro']}: criterion {'met' if passes else 'NOT met'}")
    print(f"replay agrees with the generator: {replay_checks}")
    result = {
        "bench": "adaptive_vs_fixed", "teacher": teacher.split("@")[0],
        "served_by": None if args.teacher else "llama-server", "n": args.n, "task": "arithmetic", "split": "test",
        "steps": args.steps, "cap": cap, "threshold": t, "legacy_threshold": args.legacy_threshold,
        "max_tokens": args.max_tokens, "seed": args.seed,
        "criterion": {"uses": "kept_accuracy_macro", "adaptive_fewer_requests_and_macro_not_lower": passes},
        "replay_matches_generator": replay_checks,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "threads": args.threads,
                    "parallel": args.parallel},
        "arms": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
