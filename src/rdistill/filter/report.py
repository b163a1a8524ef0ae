"""The filter report: what was kept, what was dropped and why, as JSON and as tables for the CLI.

Every input trace is counted exactly once: `kept + sum(dropped_by_reason.values()) == input`.
Flags (e.g. ungrounded numbers on a trace that was kept) are counted apart and never add to the total.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Sequence

from pydantic import BaseModel, Field

from rdistill.filter.config import FilterConfig
from rdistill.filter.verdicts import REASONS

if TYPE_CHECKING:
    from rdistill.filter.pipeline import Decision

VOTE_SHARE_BINS: tuple[tuple[float, float], ...] = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0))


class StrategyCounts(BaseModel):
    input: int = 0
    kept: int = 0
    dropped_by_reason: dict[str, int] = Field(default_factory=dict)


class FilterReport(BaseModel):
    input: int
    kept: int
    dropped: int
    dropped_by_reason: dict[str, int]  # only reasons that dropped something, in pipeline order
    flagged_by_reason: dict[str, int]  # kept traces carrying a flag
    steps_histogram: dict[str, dict[str, int]]  # {"input"|"kept": {n_steps: traces}}
    vote_share_histogram: dict[str, dict[str, int]]  # {"input"|"kept": {"0.8-1.0": traces}}
    by_strategy: dict[str, StrategyCounts]
    config: dict[str, Any]
    sandbox_isolation: list[str] | None = None
    # With keep_rejected_pairs: kept chosen and rejected traces, and pairs with both sides kept (pipeline.py).
    pairs: dict[str, int] | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _ordered(counter: Counter) -> dict[str, int]:
    return {reason: counter[reason] for reason in REASONS if counter[reason]}


def _steps_histogram(decisions: Sequence["Decision"]) -> dict[str, int]:
    counts = Counter(d.n_steps for d in decisions)
    return {str(n): counts[n] for n in sorted(counts)}


def _vote_bin(share: float) -> str:
    for lo, hi in VOTE_SHARE_BINS:
        if share < hi or hi == VOTE_SHARE_BINS[-1][1]:
            return f"{lo:.1f}-{hi:.1f}"
    raise AssertionError(share)


def _vote_histogram(decisions: Sequence["Decision"]) -> dict[str, int]:
    counts = Counter(_vote_bin(d.vote_share) for d in decisions if d.vote_share is not None)
    return {f"{lo:.1f}-{hi:.1f}": counts[f"{lo:.1f}-{hi:.1f}"] for lo, hi in VOTE_SHARE_BINS}


def build_report(decisions: Sequence["Decision"], config: FilterConfig) -> FilterReport:
    kept = [d for d in decisions if d.kept]
    dropped = Counter(d.reason for d in decisions if not d.kept)
    flagged = Counter(flag for d in kept for flag in d.flags)
    strategies: dict[str, StrategyCounts] = {}
    per_strategy_drops: dict[str, Counter] = {}
    for d in decisions:
        counts = strategies.setdefault(d.trace.strategy, StrategyCounts())
        counts.input += 1
        counts.kept += d.kept
        if not d.kept:
            per_strategy_drops.setdefault(d.trace.strategy, Counter())[d.reason] += 1
    for strategy, drops in per_strategy_drops.items():
        strategies[strategy].dropped_by_reason = _ordered(drops)
    isolation = None
    if config.sandbox:
        from rdistill.filter.sandbox import isolation_mechanisms

        isolation = list(isolation_mechanisms())
    pairs = _pair_counts(kept) if config.keep_rejected_pairs else None
    return FilterReport(
        input=len(decisions), kept=len(kept), dropped=len(decisions) - len(kept), dropped_by_reason=_ordered(dropped),
        flagged_by_reason=_ordered(flagged),
        steps_histogram={"input": _steps_histogram(decisions), "kept": _steps_histogram(kept)},
        vote_share_histogram={"input": _vote_histogram(decisions), "kept": _vote_histogram(kept)},
        by_strategy=dict(sorted(strategies.items())), config=config.to_json_dict(), sandbox_isolation=isolation,
        pairs=pairs)


def _pair_counts(kept: Sequence["Decision"]) -> dict[str, int]:
    from rdistill.filter.pipeline import pair_role

    roles: dict[str, set[str]] = {}
    counts = Counter()
    for d in kept:
        role = pair_role(d.trace)
        if role in ("chosen", "rejected"):
            counts[f"{role}_kept"] += 1
            roles.setdefault(d.trace.metadata["pair_id"], set()).add(role)
    return {"chosen_kept": counts["chosen_kept"], "rejected_kept": counts["rejected_kept"],
            "groups_paired": sum(1 for r in roles.values() if r == {"chosen", "rejected"})}


def report_tables(report: FilterReport) -> list:
    """Rich tables for the CLI to print: outcomes, per strategy, steps and vote-share histograms."""
    from rich.table import Table

    def share(n: int) -> str:
        return f"{n / report.input:.1%}" if report.input else "-"

    outcome = Table("outcome", "traces", "share", title="filter", title_justify="left")
    outcome.add_row("kept", str(report.kept), share(report.kept), style="green")
    for reason, n in report.dropped_by_reason.items():
        outcome.add_row(f"dropped: {reason}", str(n), share(n))
    for reason, n in report.flagged_by_reason.items():
        outcome.add_row(f"(kept, flagged: {reason})", str(n), share(n), style="yellow")
    if report.pairs is not None:
        outcome.add_row("(kept: rejected sides of pairs)", str(report.pairs["rejected_kept"]),
                        share(report.pairs["rejected_kept"]), style="yellow")
    outcome.add_row("input", str(report.input), "100.0%" if report.input else "-", style="bold")

    per_strategy = Table("strategy", "input", "kept", "dropped by reason", title="per strategy", title_justify="left")
    for name, counts in report.by_strategy.items():
        reasons = ", ".join(f"{r} {n}" for r, n in counts.dropped_by_reason.items()) or "-"
        per_strategy.add_row(name, str(counts.input), str(counts.kept), reasons)

    steps = Table("steps", "input", "kept", title="steps", title_justify="left")
    for n, count in report.steps_histogram["input"].items():
        steps.add_row(n, str(count), str(report.steps_histogram["kept"].get(n, 0)))

    votes = Table("vote share", "input", "kept", title="vote share", title_justify="left")
    for label, count in report.vote_share_histogram["input"].items():
        votes.add_row(label, str(count), str(report.vote_share_histogram["kept"][label]))
    return [outcome, per_strategy, steps, votes]
