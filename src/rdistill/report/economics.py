"""What distilling cost, what each answer costs, and after how many queries the student has paid for itself.

The account of a run comes from its manifest: every finished stage's wall seconds times the machine's hourly price
(an assumption the report states, `report.hourly_usd`), plus the teacher's API dollars from the ledgers. The stages
that make the student (data, generate, filter, train) are the distillation cost; evaluation and the report measure
it and are counted apart.

A model's cost per answer is its serving cost per 1K generated tokens (cost.py: list price for API models, hourly
price over measured throughput for local ones) times the tokens it generated per answer; per correct answer, that
divided by its accuracy. A reference API model (`report.compare_with`) is priced at its list price for the tokens the
teacher used per answer (prompt and completion): what asking it the same questions would cost if it answered at the
teacher's length, an assumption stated with the number.

Break-even: a student that costs `s` per query and took `D` to make is cheaper than a model costing `c > s` per
query after D / (c - s) queries; never when c <= s.
"""

from __future__ import annotations

import math

from rdistill.errors import InputError

DISTILLATION_KINDS = ("data", "generate", "filter", "train")  # stages that make the student; the rest measure it


def run_account(manifest: dict, *, hourly_usd: float, teacher_usd: float) -> dict:
    """Seconds and dollars of every finished stage of a run, by kind, and the distillation total."""
    stages = []
    for name, entry in manifest.get("stages", {}).items():
        if entry.get("status") != "done":
            continue
        seconds = float(entry.get("seconds") or 0.0)
        stages.append({"stage": name, "kind": name.split(":")[0], "seconds": round(seconds, 3),
                       "compute_usd": seconds / 3600.0 * hourly_usd})
    by_kind: dict[str, dict] = {}
    for s in stages:
        kind = by_kind.setdefault(s["kind"], {"seconds": 0.0, "compute_usd": 0.0})
        kind["seconds"] = round(kind["seconds"] + s["seconds"], 3)
        kind["compute_usd"] += s["compute_usd"]
    distill_s = sum(s["seconds"] for s in stages if s["kind"] in DISTILLATION_KINDS)
    measure_s = sum(s["seconds"] for s in stages if s["kind"] not in DISTILLATION_KINDS)
    return {"stages": stages, "by_kind": by_kind, "teacher_usd": teacher_usd,
            "distillation_seconds": round(distill_s, 3),
            "distillation_usd": distill_s / 3600.0 * hourly_usd + teacher_usd,
            "measurement_seconds": round(measure_s, 3), "measurement_usd": measure_s / 3600.0 * hourly_usd}


def answer_cost(usd_per_1k_tokens: float | None, completion_tokens: int, answers: int,
                accuracy: float | None) -> dict:
    """{"usd_per_answer", "usd_per_correct"} (None where unknown; per correct answer is None at 0% accuracy)."""
    if usd_per_1k_tokens is None or answers <= 0:
        return {"usd_per_answer": None, "usd_per_correct": None}
    per_answer = usd_per_1k_tokens * completion_tokens / answers / 1000.0
    per_correct = per_answer / accuracy if accuracy else None
    return {"usd_per_answer": per_answer, "usd_per_correct": per_correct}


def break_even_queries(distillation_usd: float, student_usd_per_query: float,
                       other_usd_per_query: float) -> float | None:
    """Queries after which the student, its making included, has cost less than the other model; None: never."""
    saving = other_usd_per_query - student_usd_per_query
    if saving <= 0:
        return None
    return distillation_usd / saving


def reference_per_query(name: str, table, prompt_tokens: float, completion_tokens: float) -> float:
    """An API model's list price for one query of the teacher's length. An unknown model is an error naming the
    fix: a model the price table does not hold cannot be compared."""
    from rdistill.teachers.prices import price_for

    provider, _, model = name.partition(":")
    price = price_for(table.prices, provider, model) if model else None
    if price is None:
        raise InputError(f"no price for {name!r} in the price table ({table.source}); name a model it holds "
                         f"(e.g. {next(iter(table.prices), 'openai:gpt-4o-mini')}) or add it to a price file: "
                         f"{{\"{name}\": {{\"input\": USD per 1M tokens, \"output\": USD per 1M tokens}}}}",
                         field="compare_with")
    return price.cost(prompt_tokens, completion_tokens)


def cumulative_costs(distillation_usd: float, student: float, others: dict[str, float], queries: int,
                     points: int = 50) -> dict:
    """Cumulative dollars after 0..queries queries: the student (its making first) and each other model."""
    xs = [round(queries * i / (points - 1)) for i in range(points)]
    return {"queries": xs, "student": [distillation_usd + student * x for x in xs],
            **{name: [cost * x for x in xs] for name, cost in others.items()}}


def plot_horizon(break_evens: list[float | None]) -> int:
    """How many queries the plot spans: twice the latest finite break-even (rounded up), else a million."""
    finite = [b for b in break_evens if b is not None]
    if not finite:
        return 1_000_000
    top = 2 * max(finite)
    return int(10 ** math.ceil(math.log10(top))) if top > 0 else 1000
