"""Run the filters over a set of traces: each trace is kept, or dropped with the first failing reason.

Order (cheap and decisive first, the sandbox late, duplicates last so that the copy kept is the first
one that passed everything else): no_answer, wrong_answer / disagrees_with_majority, too_few_steps /
too_many_steps, too_long, wrong_arithmetic, ungrounded_number, symbolic_mismatch, code_failed /
code_mismatch, duplicate.

With `keep_rejected_pairs` (for pair training methods), the traces of the contrastive strategy are judged as pairs:
a chosen trace (`metadata.role`) goes through every check above, and a rejected trace, wrong by design, is judged by
its pair instead: kept exactly when it has an answer, that answer is wrong (rejected_is_correct otherwise), and the
chosen trace of its `metadata.pair_id` is kept (unpaired_rejected otherwise). Rejected traces skip the quality
checks (a rewrite carries a planted arithmetic error) and duplicate detection (a rewrite is a near copy of its chosen
trace). Without the option, every trace is judged alone, pair traces included.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from rdistill.answers import judge
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
from rdistill.filter.verdicts import FilterVerdict, drop
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
    decisions: list[Decision | None] = []
    for index, (f, vote) in enumerate(zip(facts, votes)):
        if config.keep_rejected_pairs and pair_role(f.trace) == "rejected":
            decisions.append(None)  # judged below, once every chosen trace is
            continue
        verdict, flags = _first_failure(f, vote, checks)
        if verdict is None and dedup is not None:
            found = dedup.check(f, index)
            verdict = None if found.passed else found
        decisions.append(_decide(f, vote, verdict, flags))
    if config.keep_rejected_pairs:
        _judge_rejected(facts, votes, decisions)
    kept = sum(d.kept for d in decisions)
    _log.info("filter: kept %d of %d traces", kept, len(decisions))
    return decisions


def pair_role(trace: Trace) -> str | None:
    """The role of a contrastive pair's trace ("chosen" or "rejected"); None for a trace of no pair."""
    return trace.metadata.get("role") if trace.metadata.get("pair_id") else None


def _judge_rejected(facts: list[TraceFacts], votes: list[Vote], decisions: list[Decision | None]) -> None:
    """Fill in the decisions left open for rejected traces, from the decisions on the chosen ones."""
    chosen = [d for d in decisions if d is not None and pair_role(d.trace) == "chosen"]
    kept_pairs = {d.trace.metadata["pair_id"] for d in chosen if d.kept}
    chosen_reason = {d.trace.metadata["pair_id"]: d.reason for d in chosen if not d.kept}
    for index, (f, vote) in enumerate(zip(facts, votes)):
        if decisions[index] is not None:
            continue
        verdict = has_answer(f)
        if verdict.passed and f.has_gold and judge(f.predicted, f.trace.answer, f.trace.answer_type, f.trace.choices):
            verdict = drop("rejected_is_correct", predicted=f.predicted, gold=f.trace.answer)
        pair_id = f.trace.metadata["pair_id"]
        if verdict.passed and pair_id not in kept_pairs:
            verdict = drop("unpaired_rejected", pair_id=pair_id, chosen=chosen_reason.get(pair_id, "missing"))
        decisions[index] = _decide(f, vote, None if verdict.passed else verdict, {})


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
