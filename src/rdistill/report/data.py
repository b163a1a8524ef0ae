"""The numbers a report shows, as one JSON-able dict; markdown.py and html.py only lay them out.

Per benchmark: one row per result set (teacher first, then baselines, then students), each accuracy with its
95% Wilson interval and n, and how many of its answers were cut off at max_tokens; each student's paired
difference from the teacher and the baseline used (interval and exact McNemar p over the same problems); which
baseline prompt was chosen and why; accuracy by number of steps; the reasoning-quality metrics; and any fairness
issue that was allowed. Then cost: teacher calls from the ledgers and serving cost per 1K generated tokens for
every evaluated model.
"""

from __future__ import annotations

from rdistill.errors import InputError
from rdistill.evaluate.comparison import BenchComparison, ResultSet, paired_difference
from rdistill.evaluate.metrics import QUALITY_METRICS, aggregate_quality
from rdistill.evaluate.runner import throughput
from rdistill.report.cost import DEFAULT_HOURLY_USD, ledger_rows, serving_cost
from rdistill.report.economics import (answer_cost, break_even_queries, cumulative_costs, plot_horizon,
                                       reference_per_query, run_account)

ROLE_ORDER = {"teacher": 0, "baseline": 1, "student": 2, None: 3}


def report_data(comparisons: list[BenchComparison], *, ledgers: dict[str, dict] | None = None,
                hourly_usd: float = DEFAULT_HOURLY_USD, prices=None, manifest: dict | None = None,
                compare_with: list[str] = ()) -> dict:
    """`prices` is a PriceTable (teachers.prices.price_table) or None for the shipped one; `manifest` a run's
    manifest.json, for the cost of making the students; `compare_with` API models priced for the break-even."""
    from rdistill.teachers.prices import price_table

    table = prices if prices is not None else price_table()
    benches = [_bench(c) for c in comparisons]
    # One serving row per model, from all of its results (a baseline has two prompt styles' worth).
    by_model: dict[str, list[ResultSet]] = {}
    for comparison in comparisons:
        for s in comparison.sets:
            by_model.setdefault(s.model, []).append(s)
    ledger_list = [row for source, ledger in (ledgers or {}).items() for row in ledger_rows(ledger, source)]
    serving = [serving_cost(sets, hourly_usd=hourly_usd, prices=table.prices) for sets in by_model.values()]
    return {
        "benches": benches,
        "quality_metrics": QUALITY_METRICS,
        "cost": {"hourly_usd": hourly_usd, "ledgers": ledger_list, "serving": serving},
        "models": [{"name": sets[0].name or sets[0].model, "model": model, "role": sets[0].role,
                    "model_id": sets[0].run.get("model_id")} for model, sets in by_model.items()],
        "economics": economics(comparisons, serving, table, hourly_usd=hourly_usd, manifest=manifest,
                               teacher_usd=sum(r["cost_usd"] for r in ledger_list), compare_with=compare_with),
        "star": star_iterations(manifest),
    }


def star_iterations(manifest: dict | None) -> list[dict]:
    """The STaR stages' counts (pipeline/star.py), in iteration order; [] for a run without STaR."""
    stages = (manifest or {}).get("stages") or {}
    found = [(int(name.split(":")[1]), entry.get("detail") or {}) for name, entry in stages.items()
             if name.startswith("star:") and name.split(":")[1].isdigit() and entry.get("status") == "done"]
    return [detail for _, detail in sorted(found, key=lambda item: item[0])]


def economics(comparisons: list[BenchComparison], serving: list[dict], table, *, hourly_usd: float,
              manifest: dict | None, teacher_usd: float, compare_with: list[str]) -> dict:
    """The run's account, each model's cost per (correct) answer on each set, and each student's break-even."""
    per_1k = {row["model"]: row["usd_per_1k_tokens"] for row in serving}
    account = run_account(manifest, hourly_usd=hourly_usd, teacher_usd=teacher_usd) if manifest else None
    answers, pooled = [], {}
    for comparison in comparisons:
        for s in ordered(comparison.sets):
            used = throughput(s.results)
            cost = answer_cost(per_1k.get(s.model), used["completion_tokens"], len(s.results),
                               s.accuracy["accuracy"]["value"])
            answers.append({"label": s.label, "model": s.model, "role": s.role, "bench": comparison.bench,
                            "answers": len(s.results), "accuracy": s.accuracy["accuracy"], **cost})
            p = pooled.setdefault(s.model, {"role": s.role, "label": s.label, "answers": 0, "prompt_tokens": 0,
                                            "completion_tokens": 0})
            p["answers"] += len(s.results)
            p["prompt_tokens"] += used["prompt_tokens"]
            p["completion_tokens"] += used["completion_tokens"]
    per_query = {m: answer_cost(per_1k.get(m), p["completion_tokens"], p["answers"], None)["usd_per_answer"]
                 for m, p in pooled.items()}
    teacher = next((m for m, p in pooled.items() if p["role"] == "teacher"), None)
    others: dict[str, float] = {}
    if teacher is not None and per_query.get(teacher) is not None:
        others[f"teacher ({pooled[teacher]['label']})"] = per_query[teacher]
    for name in compare_with:
        if teacher is None:
            raise InputError(f"the break-even against {name} prices it at the teacher's tokens per answer, and these "
                             "results hold no teacher", field="compare_with")
        t = pooled[teacher]
        others[f"{name} (list price, teacher's tokens)"] = reference_per_query(
            name, table, t["prompt_tokens"] / t["answers"], t["completion_tokens"] / t["answers"])
    break_even = []
    for model, p in pooled.items():
        if p["role"] != "student" or per_query.get(model) is None:
            continue
        made = _making_cost(account, model, teacher_usd)
        for name, cost in others.items():
            break_even.append({"student": p["label"], "model": model, "against": name, "making_usd": made,
                               "student_usd_per_query": per_query[model], "other_usd_per_query": cost,
                               "queries": break_even_queries(made, per_query[model], cost)})
    horizon = plot_horizon([b["queries"] for b in break_even])
    students = {b["student"]: (b["making_usd"], b["student_usd_per_query"]) for b in break_even}
    curves = {student: cumulative_costs(made, cost, others, horizon) for student, (made, cost) in students.items()}
    return {"hourly_usd": hourly_usd, "prices_as_of": table.as_of, "prices_source": table.source,
            "account": account, "answers": answers, "per_query": per_query, "break_even": break_even,
            "curves": curves, "making_includes": "the run's data, generate, filter and the student's own train stage "
                                                  "(wall time x hourly price) and the teacher's API dollars"
                                                  if account else "the teacher's API dollars only (no run manifest)"}


def _making_cost(account: dict | None, model: str, teacher_usd: float) -> float:
    """What it took to make this student: the shared stages (data, generate, filter) and its own training, or only
    the teacher's dollars without an account. Its training stage is train:NAME for a student served from
    .../train/NAME."""
    if account is None:
        return teacher_usd
    name = model.rstrip("/").rsplit("/", 1)[-1]
    shared = [s for s in account["stages"] if s["kind"] in ("data", "generate", "filter")]
    trains = [s for s in account["stages"] if s["kind"] == "train"]
    own = [s for s in trains if s["stage"] == f"train:{name}"] or trains  # unknown student: every training counts
    return sum(s["compute_usd"] for s in shared + own) + teacher_usd


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
