"""The numbers a report shows, as one JSON-able dict; markdown.py and html.py only lay them out.

Per benchmark: one row per result set (teacher first, then baselines, then students), each accuracy with its
95% Wilson interval and n, and how many of its answers were cut off at max_tokens; each student's paired
difference from the teacher and the baseline used (interval and exact McNemar p over the same problems); which
baseline prompt was chosen and why; accuracy by number of steps; the reasoning-quality metrics; and any fairness
issue that was allowed. Then cost: teacher calls from the ledgers and serving cost per 1K generated tokens for
every evaluated model.
"""

from __future__ import annotations

from rdistill.evaluate.comparison import BenchComparison, ResultSet, paired_difference
from rdistill.evaluate.metrics import QUALITY_METRICS, aggregate_quality
from rdistill.report.cost import DEFAULT_HOURLY_USD, ledger_rows, serving_cost

ROLE_ORDER = {"teacher": 0, "baseline": 1, "student": 2, None: 3}


def report_data(comparisons: list[BenchComparison], *, ledgers: dict[str, dict] | None = None,
                hourly_usd: float = DEFAULT_HOURLY_USD, prices=None) -> dict:
    benches = [_bench(c) for c in comparisons]
    # One serving row per model, from all of its results (a baseline has two prompt styles' worth).
    by_model: dict[str, list[ResultSet]] = {}
    for comparison in comparisons:
        for s in comparison.sets:
            by_model.setdefault(s.model, []).append(s)
    return {
        "benches": benches,
        "quality_metrics": QUALITY_METRICS,
        "cost": {
            "hourly_usd": hourly_usd,
            "ledgers": [row for source, ledger in (ledgers or {}).items() for row in ledger_rows(ledger, source)],
            "serving": [serving_cost(sets, hourly_usd=hourly_usd, prices=prices) for sets in by_model.values()],
        },
    }


def ordered(sets: list[ResultSet]) -> list[ResultSet]:
    return sorted(sets, key=lambda s: (ROLE_ORDER.get(s.role, 3), s.model, s.prompt_style))


def _bench(comparison: BenchComparison) -> dict:
    chosen_labels = {b["chosen"] for b in comparison.baselines.values()}
    references = [s for s in ordered(comparison.sets)
                  if s.role == "teacher" or (s.role == "baseline" and s.label in chosen_labels)]
    rows = []
    for s in ordered(comparison.sets):
        acc = s.accuracy
        row = {"label": s.label, "model": s.model, "role": s.role or "model", "prompt_style": s.prompt_style,
               "accuracy": acc["accuracy"], "samples": acc["samples"], "unanswered": acc["unanswered"],
               "errors": acc["errors"], "truncated": acc["truncated"], "by_steps": acc["by_steps"],
               "decoding": s.decoding,
               "baseline_used": s.label in chosen_labels, "quality": aggregate_quality(s.results),
               "source": str(s.path) if s.path else None}
        k = acc["samples"]
        if k > 1:
            row["pass_at_k"] = acc[f"pass@{k}"]
            row["sample_accuracy"] = acc["sample_accuracy"]
        if s.role == "student":
            # the gain that matters, measured on the same problems: against the baseline used and the teacher
            row["paired"] = [paired_difference(s, ref) for ref in references]
        rows.append(row)
    decoding = comparison.sets[0].decoding if comparison.sets else {}
    return {"bench": comparison.bench, "n_problems": len(comparison.problem_ids), "decoding": decoding,
            "issues": comparison.issues, "baselines": comparison.baselines, "rows": rows}
