"""Run the filters over a set of traces: each trace is kept, or dropped with the first failing reason.

Order (cheap and decisive first, the sandbox late, duplicates last so that the copy kept is the first
one that passed everything else): no_answer, wrong_answer / disagrees_with_majority, too_few_steps /
too_many_steps, too_long, wrong_arithmetic, ungrounded_number, symbolic_mismatch, code_failed /
code_mismatch, duplicate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from rdistill.filter.answer_filters import has_answer, is_correct
from rdistill.filter.arithmetic_filter import arithmetic_holds
from rdistill.filter.code_filter import code_agrees
from rdistill.filter.config import FilterConfig
from rdistill.filter.dedup_filter import Deduplicator
from rdistill.filter.facts import TraceFacts
from rdistill.filter.grounding_filter import numbers_grounded
from rdistill.filter.length_filters import short_enough, step_count_within
from rdistill.filter.majority import Vote, tally_votes
from rdistill.filter.report import FilterReport, build_report
from rdistill.filter.symbolic_filter import symbolically_equal
from rdistill.filter.verdicts import FilterVerdict
from rdistill.records import Trace

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    trace: Trace  # annotated: `filter_flags` in metadata, and `filter_reason`/`filter_details` when dropped
    reason: str | None
    details: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_steps: int = 0
    vote_share: float | None = None

    @property
    def kept(self) -> bool:
        return self.reason is None


Check = Callable[[TraceFacts, Vote], FilterVerdict]


def _checks(config: FilterConfig) -> list[Check]:
    checks: list[Check] = [lambda f, v: has_answer(f)]
    if config.require_correct or config.majority:
        checks.append(lambda f, v: is_correct(f, v, use_majority=config.majority))
    if config.min_steps is not None or config.max_steps is not None:
        checks.append(lambda f, v: step_count_within(f, config.min_steps, config.max_steps))
    if config.max_chars is not None:
        checks.append(lambda f, v: short_enough(f, config.max_chars))
    if config.check_arithmetic:
        checks.append(lambda f, v: arithmetic_holds(f))
    checks.append(lambda f, v: numbers_grounded(f, drop_ungrounded=config.check_grounded))
    if config.symbolic:
        checks.append(lambda f, v: symbolically_equal(f))
    if config.sandbox:
        checks.append(lambda f, v: code_agrees(f, config.sandbox_limits))
    return checks


def judge_traces(traces: Iterable[Trace], config: FilterConfig | None = None) -> list[Decision]:
    """One Decision per trace, in input order."""
    config = config or FilterConfig()
    facts = [TraceFacts(t) for t in traces]
    votes = tally_votes(facts)
    checks = _checks(config)
    dedup = Deduplicator(config.dedup_threshold) if config.dedup else None
    decisions = []
    for index, (f, vote) in enumerate(zip(facts, votes)):
        verdict, flags = _first_failure(f, vote, checks)
        if verdict is None and dedup is not None:
            found = dedup.check(f, index)
            verdict = None if found.passed else found
        decisions.append(_decide(f, vote, verdict, flags))
    kept = sum(d.kept for d in decisions)
    _log.info("filter: kept %d of %d traces", kept, len(decisions))
    return decisions


def _first_failure(f: TraceFacts, vote: Vote, checks: list[Check]) -> tuple[FilterVerdict | None, dict]:
    flags: dict[str, dict[str, Any]] = {}
    for check in checks:
        verdict = check(f, vote)
        if verdict.flag:
            flags[verdict.flag] = verdict.details
        if not verdict.passed:
            return verdict, flags
    return None, flags


def _decide(f: TraceFacts, vote: Vote, verdict: FilterVerdict | None, flags: dict) -> Decision:
    metadata = dict(f.trace.metadata)
    if flags:
        metadata["filter_flags"] = flags
    if verdict is not None:
        metadata["filter_reason"] = verdict.reason
        metadata["filter_details"] = verdict.details
    trace = f.trace.model_copy(update={"metadata": metadata})
    return Decision(trace=trace, reason=verdict.reason if verdict else None,
                    details=verdict.details if verdict else {}, flags=flags, n_steps=len(f.steps),
                    vote_share=vote.vote_share)


def filter_traces(traces: Iterable[Trace], config: FilterConfig | None = None) -> tuple[list[Trace], FilterReport]:
    """The traces that pass every filter, and a report of what was dropped and why."""
    config = config or FilterConfig()
    decisions = judge_traces(traces, config)
    return [d.trace for d in decisions if d.kept], build_report(decisions, config)
