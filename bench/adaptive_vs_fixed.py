"""Adaptive self-consistency against a fixed number of samples: what each costs and how good the kept traces are.

    python bench/adaptive_vs_fixed.py [--n 100] [--base-url http://127.0.0.1:PORT/v1]

On N built-in arithmetic problems (test split, 2-5 steps), the 1.5B teacher (served as in
bench/generate_and_filter.py, sharing its response cache) generates chain-of-thought traces:
- fixed: `--samples 5` per problem;
- adaptive arms, `--adaptive --max-samples 5 --vote-threshold T` plus (rdistill.generate.voting.StopRule):
  - "adaptive settle": the earlier default (Beta posterior >= 0.95 or a settled lead, 3+ agreeing, share >= T),
    `--settle --no-stop-futile`;
  - "settle + futile": `--settle --stop-futile`;
  - "Beta + futile" (the default): stop on a Beta posterior >= 0.95, or once the vote test can no longer pass
    at the cap;
  - "futile only": `--stop-futile --no-settle --vote-confidence 1`, which stops only where the problem is lost
    anyway, so it keeps exactly what the fixed arm keeps under the same vote test (a theorem, tested in
    tests/test_generate_voting.py; here it is a check);
  - "adaptive-gold": `--adaptive-gold` (stop at the first sample that matches gold). Its vote rarely passes the
    test (it stops at one sample when that one is right), so its majority-filter row means little and it is not
    compared there: its numbers are the gold filter's.
Sample k of a problem is the same request in every arm (same prompt, temperature, seed + k), so the fixed arm
runs first and the adaptive arms are answered from the persistent response cache: their samples are a prefix
of the fixed arm's, byte for byte, and a rerun of the whole bench costs no calls. "requests" counts calls plus
cache hits: what each arm would have paid on its own. The rule before the Beta criterion (share >= 0.6 with two
agreeing samples, every plurality kept) is replayed on the fixed arm's samples with the generator's loop; the
replay of every generator-run adaptive arm must agree with the generator, sample for sample.

Kept traces (the majority filter, no gold needed): the traces that agree with their problem's majority.
- An adaptive arm's traces record whether its vote was decided (`vote_decided`): a problem that stopped without
  agreement and fails the vote test (top answer >= T of its samples, 3+ agreeing) has no majority, and none of
  its traces is kept. These rows keep what `rdistill filter --majority` keeps (the recorded
  `agrees_with_majority`).
- The fixed arm is shown twice: "fixed 5" keeps every problem's plurality (what `rdistill filter --majority`
  keeps of a `--samples 5` run), "fixed 5 + vote test" keeps only problems whose 5 samples pass the same vote
  test as the adaptive arms apply at their cap: the like-for-like baseline.
Kept-trace accuracy: share of kept traces whose answer matches gold. "micro" pools the kept traces (95% Wilson
interval over traces; traces of one problem share their answer, so that interval is too narrow), "macro"
averages per problem over the problems with a kept trace (95% Wilson interval over problems). Differences
against each fixed row come with a paired bootstrap over problems (95%, seeded), which respects that clustering.
Micro weighs each problem by how many agreeing copies an arm keeps: stopping an easy problem at 4 agreeing
samples instead of 5 lowers micro a little even when the kept problems and answers are the same.
The gold filter (`rdistill filter` defaults: gold-correct answer and every step re-computes): kept traces, and
the problems left with at least one (coverage). Prints a table and writes bench/results/adaptive_vs_fixed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
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
                                      next_round_size, passes_vote_test, stop_reason, vote_decided)
from rdistill.records import Problem, Trace  # noqa: E402
from rdistill.stats import bootstrap_interval, wilson_interval  # noqa: E402
from rdistill.teachers import make_teacher  # noqa: E402

BOOTSTRAP = 2000


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


def by_problem(traces: list[Trace]) -> dict[str, list[Trace]]:
    out: dict[str, list[Trace]] = {}
    for t in sorted(traces, key=lambda t: (t.problem_id, t.sample_index)):
        out.setdefault(t.problem_id, []).append(t)
    return out


def replay(problems: list[Problem], fixed: list[Trace], rule: StopRule) -> dict[str, tuple[list[Trace], str]]:
    """What adaptive sampling under `rule` would have taken, and why it stopped: the generator's loop
    (strategies/base.py) over the fixed arm's samples (sample k there is the request the adaptive run sends)."""
    by_key = {(t.problem_id, t.sample_index): t for t in fixed}
    out = {}
    for problem in problems:
        traces: list[Trace] = []
        tried, batch = 0, first_round_size(rule, problem)
        while True:
            traces += [by_key[problem.id, k] for k in range(tried, tried + batch) if (problem.id, k) in by_key]
            tried += batch
            vote = majority_vote(answers_of(traces), problem)
            reason = stop_reason(vote, rule, tried)
            if reason is not None:
                break
            batch = next_round_size(vote, rule, tried)
        out[problem.id] = (traces, reason)
    return out


# -------------------------------------------------------------------------------------------- keep rules
# Each returns, per problem id, the traces the majority filter keeps.

def kept_as_recorded(traces: list[Trace]) -> dict[str, list[Trace]]:
    """What `rdistill filter --majority` keeps: the traces whose recorded vote says they agree."""
    return {pid: [t for t in ts if t.metadata.get("agrees_with_majority") is True]
            for pid, ts in by_problem(traces).items()}


def kept_with_vote_test(problems: list[Problem], traces: list[Trace], rule: StopRule) -> dict[str, list[Trace]]:
    """The agreeing traces of the problems whose samples pass `rule`'s vote test (fixed sampling, filtered)."""
    mine = by_problem(traces)
    out = {}
    for problem in problems:
        ts = mine.get(problem.id, [])
        vote = majority_vote(answers_of(ts), problem)
        passes = vote.majority is not None and passes_vote_test(vote.top_count, vote.n_samples, rule)
        out[problem.id] = [t for i, t in enumerate(ts) if passes and vote.labels[i] == 0]
    return out


def kept_by_replay(problems: list[Problem], replayed: dict, rule: StopRule, drop_undecided: bool) -> dict:
    out = {}
    for problem in problems:
        ts, reason = replayed[problem.id]
        vote = majority_vote(answers_of(ts), problem)
        keep = vote.majority is not None and (vote_decided(vote, rule, reason) or not drop_undecided)
        out[problem.id] = [t for i, t in enumerate(ts) if keep and vote.labels[i] == 0]
    return out


# ----------------------------------------------------------------------------------------------- metrics

def counts(problems: list[Problem], kept: dict[str, list[Trace]]) -> list[tuple[int, int]]:
    """Per problem, in problem order: (kept traces, kept traces whose answer is gold-correct)."""
    return [(len(kept.get(p.id, [])), sum(t.correct is True for t in kept.get(p.id, []))) for p in problems]


def micro(c: list[tuple[int, int]]) -> float | None:
    n = sum(k for k, _ in c)
    return sum(r for _, r in c) / n if n else None


def macro(c: list[tuple[int, int]]) -> float | None:
    per = [r / k for k, r in c if k]
    return sum(per) / len(per) if per else None


def interval(lo_hi: tuple[float, float]) -> list[float]:
    return [round(lo_hi[0], 4), round(lo_hi[1], 4)]


def measure(name: str, problems: list[Problem], traces: list[Trace], kept: dict[str, list[Trace]],
            cost: dict | str, keep_rule: str) -> dict:
    c = counts(problems, kept)
    kept_traces, right = sum(k for k, _ in c), sum(r for _, r in c)
    per_problem = [r / k for k, r in c if k]
    if all(x in (0.0, 1.0) for x in per_problem):  # agreeing traces share one answer: each problem is 0 or 1
        macro_ci = wilson_interval(round(sum(per_problem)), len(per_problem))
    else:
        macro_ci = bootstrap_interval(per_problem, iterations=BOOTSTRAP)
    mine = by_problem(traces)
    gold_kept, _ = filter_traces(traces, FilterConfig())
    covered = len({t.problem_id for t in gold_kept})
    requests = len(traces) if not isinstance(cost, dict) else cost["fresh_calls"] + cost["cache_hits"]
    return {
        "arm": name, "keep_rule": keep_rule, "problems": len(problems), "requests": requests,
        "completion_tokens": sum(t.usage.completion_tokens for t in traces),
        "traces": len(traces), "trace_accuracy": _round(sum(t.correct is True for t in traces) / len(traces)),
        "kept_traces": kept_traces, "kept_correct": right, "kept_problems": len(per_problem),
        "kept_accuracy_micro": _round(micro(c)), "kept_accuracy_micro_ci95": interval(wilson_interval(right,
                                                                                                      kept_traces)),
        "kept_accuracy_macro": _round(macro(c)), "kept_accuracy_macro_ci95": interval(macro_ci),
        "gold_filter_kept": len(gold_kept), "gold_filter_problems": covered,
        "samples_per_problem": dict(sorted(Counter(len(mine.get(p.id, [])) for p in problems).items())),
        "stop_reasons": dict(Counter(ts[0].metadata["adaptive_stop"] for ts in mine.values()
                                     if "adaptive_stop" in ts[0].metadata)),
        "cost": cost,
        "_counts": c,
    }


def paired_difference(a: list[tuple[int, int]], b: list[tuple[int, int]], seed: int = 0) -> dict:
    """a - b in micro and macro kept accuracy, with 95% intervals from a paired bootstrap over problems."""
    rng = random.Random(seed)
    n = len(a)
    diffs: dict[str, list[float]] = {"micro": [], "macro": []}
    for _ in range(BOOTSTRAP):
        idx = [rng.randrange(n) for _ in range(n)]
        for name, f in (("micro", micro), ("macro", macro)):
            x, y = f([a[i] for i in idx]), f([b[i] for i in idx])
            if x is not None and y is not None:
                diffs[name].append(x - y)
    out = {}
    for name, f in (("micro", micro), ("macro", macro)):
        d = sorted(diffs[name])
        point = f(a) - f(b) if f(a) is not None and f(b) is not None else None
        out[name] = {"difference": _round(point),
                     "ci95": [_round(d[int(0.025 * len(d))]), _round(d[min(len(d) - 1, int(0.975 * len(d)))])]
                     if d else None}
    return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="number of arithmetic problems")
    ap.add_argument("--samples", type=int, default=5, help="fixed arm: samples; adaptive arms: the cap")
    ap.add_argument("--threshold", type=float, default=0.7, help="--vote-threshold of the adaptive arms, and the "
                                                                 "vote test of the 'fixed + vote test' row")
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
    cap, t = args.samples, args.threshold
    common = dict(max_tokens=args.max_tokens, seed=args.seed)
    adaptive = dict(adaptive=True, vote_threshold=t, max_samples=cap, **common)
    adaptive_arms = {
        "adaptive settle": GenerationOptions(settle=True, stop_futile=False, **adaptive),
        "adaptive settle + futile": GenerationOptions(settle=True, stop_futile=True, **adaptive),
        "adaptive Beta + futile (default)": GenerationOptions(**adaptive),
        "adaptive futile only": GenerationOptions(stop_futile=True, settle=False, vote_confidence=1.0, **adaptive),
        "adaptive-gold": GenerationOptions(adaptive_gold=True, **adaptive),
    }
    serving = nullcontext(args.teacher) if args.teacher else served_teacher(args.base_url, args.threads, args.parallel)
    with tempfile.TemporaryDirectory() as tmp, serving as teacher:
        tmp = Path(tmp)
        fixed, fixed_cost = run_arm(problems, teacher, GenerationOptions(samples=cap, **common), tmp / "fixed.jsonl",
                                    "fixed")
        runs = {name: run_arm(problems, teacher, options, tmp / f"arm{i}.jsonl", name)
                for i, (name, options) in enumerate(adaptive_arms.items())}

    vote_test = adaptive_arms["adaptive Beta + futile (default)"].stop_rule()
    rows = [measure(f"fixed {cap}", problems, fixed, kept_as_recorded(fixed), fixed_cost, "plurality"),
            measure(f"fixed {cap} + vote test", problems, fixed, kept_with_vote_test(problems, fixed, vote_test),
                    fixed_cost, f"vote test (share >= {t}, {vote_test.min_agreeing}+ agreeing)")]
    rows += [measure(name, problems, traces, kept_as_recorded(traces), cost, "recorded (vote_decided)")
             for name, (traces, cost) in runs.items()]
    legacy = StopRule(args.legacy_threshold, cap, False, confidence=0.0, settle=False, min_agreeing=2)
    legacy_run = replay(problems, fixed, legacy)
    legacy_traces = [t for ts, _ in legacy_run.values() for t in ts]
    rows.append(measure(f"old rule (share>={args.legacy_threshold}, 2 agree)", problems, legacy_traces,
                        kept_by_replay(problems, legacy_run, legacy, drop_undecided=False),
                        "replayed from the fixed arm's samples: no requests of its own", "plurality"))

    # The replay must agree with the generator on every rule it really ran (samples taken and traces kept), or
    # the replayed row means nothing.
    replay_checks = {}
    for name, options in adaptive_arms.items():
        rule = options.stop_rule()
        replayed = replay(problems, fixed, rule)
        generated = by_problem(runs[name][0])
        kept = kept_as_recorded(runs[name][0])
        same_samples = all([t.sample_index for t in replayed[p.id][0]] ==
                           [t.sample_index for t in generated.get(p.id, [])] for p in problems)
        same_kept = all([t.sample_index for t in kept_by_replay(problems, replayed, rule, True)[p.id]] ==
                        [t.sample_index for t in kept.get(p.id, [])] for p in problems)
        replay_checks[name] = same_samples and same_kept
    # Stopping only when futile must keep exactly what the fixed arm keeps under the same vote test.
    fixed_vote = kept_with_vote_test(problems, fixed, vote_test)
    futile_kept = kept_as_recorded(runs["adaptive futile only"][0])
    exact = all([t.sample_index for t in fixed_vote[p.id]] == [t.sample_index for t in futile_kept.get(p.id, [])]
                for p in problems)

    baselines = rows[:2]
    comparisons = {}
    # adaptive-gold stops at the first gold match, so its votes rarely pass the test: it is for the gold filter.
    for row in [r for r in rows[2:2 + len(adaptive_arms)] if r["arm"] != "adaptive-gold"]:
        comparisons[row["arm"]] = {}
        for base in baselines:
            diff = paired_difference(row["_counts"], base["_counts"])
            comparisons[row["arm"]][base["arm"]] = {
                "fewer_requests": row["requests"] < base["requests"],
                "requests_saved": round(1 - row["requests"] / base["requests"], 4),
                "micro_not_lower": row["kept_accuracy_micro"] >= base["kept_accuracy_micro"],
                "macro_not_lower": row["kept_accuracy_macro"] >= base["kept_accuracy_macro"],
                **{f"{k}_difference": v for k, v in diff.items()},
            }

    print(f"n = {args.n} problems (arithmetic, test split, steps {args.steps}), cap {cap}, vote test share >= {t} "
          f"with {vote_test.min_agreeing}+ agreeing, teacher {teacher.split('@')[0]}")
    print(f"{'arm':<34} {'requests':>8} {'kept':>9} {'micro [95% Wilson]':>21} {'macro [95% Wilson]':>21} "
          f"{'gold-kept':>9} {'covered':>7}")
    for r in rows:
        kept = f"{r['kept_traces']}/{r['kept_problems']}"
        print(f"{r['arm']:<34} {r['requests']:>8} {kept:>9} {_cell(r, 'micro'):>21} {_cell(r, 'macro'):>21} "
              f"{r['gold_filter_kept']:>9} {r['gold_filter_problems']:>7}")
    print("kept = traces/problems; the adaptive rows keep what `rdistill filter --majority` keeps of their output.")
    for arm, against in comparisons.items():
        for base, c in against.items():
            mi, ma = c["micro_difference"], c["macro_difference"]
            verdict = "met" if c["fewer_requests"] and c["micro_not_lower"] and c["macro_not_lower"] else "NOT met"
            print(f"{arm} vs {base}: {c['requests_saved']:.0%} fewer requests, micro {mi['difference']:+.3f} "
                  f"[{mi['ci95'][0]:+.3f},{mi['ci95'][1]:+.3f}], macro {ma['difference']:+.3f} "
                  f"[{ma['ci95'][0]:+.3f},{ma['ci95'][1]:+.3f}] (paired bootstrap): {verdict}")
    print(f"replay agrees with the generator: {replay_checks}")
    print(f"'adaptive futile only' keeps exactly what 'fixed {cap} + vote test' keeps: {exact}")
    for r in rows:
        r.pop("_counts")
    result = {
        "bench": "adaptive_vs_fixed", "teacher": teacher.split("@")[0],
        "served_by": None if args.teacher else "llama-server", "n": args.n, "task": "arithmetic", "split": "test",
        "steps": args.steps, "cap": cap, "threshold": t, "min_agreeing": vote_test.min_agreeing,
        "legacy_threshold": args.legacy_threshold, "max_tokens": args.max_tokens, "seed": args.seed,
        "criterion": {"reads": "fewer requests than the fixed row at micro and macro kept accuracy not lower",
                      "comparisons": comparisons},
        "replay_matches_generator": replay_checks, "futile_only_keeps_what_fixed_with_vote_test_keeps": exact,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "threads": args.threads,
                    "parallel": args.parallel},
        "arms": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


def _cell(row: dict, which: str) -> str:
    value, (lo, hi) = row[f"kept_accuracy_{which}"], row[f"kept_accuracy_{which}_ci95"]
    return "-" if value is None else f"{value:.3f} [{lo:.2f},{hi:.2f}]"


if __name__ == "__main__":
    main()
