"""Majority votes over the sampled traces of each problem, for traces without (or without trusted) gold.

Where generation already voted, its metadata is used as it is: `agrees_with_majority`, `majority_answer`,
`vote_share`. Otherwise the vote is taken here over the traces of the same `problem_id`: answers are
grouped with the shared checker (so "0.5" and "1/2" are one answer), a trace's vote share is its group's
size over the number of traces of the problem (a trace with no answer is a sample that did not vote for
anything), and every group tied for the most votes counts as a majority.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from rdistill.answers import judge
from rdistill.filter.facts import TraceFacts


@dataclass(frozen=True)
class Vote:
    agrees: bool | None  # None: the trace has no answer to vote with
    vote_share: float | None
    majority_answers: tuple[str, ...]


def tally_votes(facts: Sequence[TraceFacts]) -> list[Vote]:
    """One Vote per trace, in input order."""
    by_problem: dict[str, list[int]] = defaultdict(list)
    for index, f in enumerate(facts):
        by_problem[f.trace.problem_id].append(index)
    votes: list[Vote | None] = [None] * len(facts)
    for indices in by_problem.values():
        for index, vote in zip(indices, _vote_within(indices, facts)):
            votes[index] = _prefer_recorded(facts[index], vote)
    return votes  # type: ignore[return-value]


def _vote_within(indices: list[int], facts: Sequence[TraceFacts]) -> list[Vote]:
    groups: list[list[int]] = []  # positions in `indices` sharing one answer; the first is the representative
    group_of: dict[int, int] = {}
    for pos, index in enumerate(indices):
        f = facts[index]
        if f.predicted is None:
            continue
        for g, members in enumerate(groups):
            if judge(f.predicted, facts[indices[members[0]]].predicted, f.answer_type, f.trace.choices):
                members.append(pos)
                group_of[pos] = g
                break
        else:
            group_of[pos] = len(groups)
            groups.append([pos])
    top = max((len(m) for m in groups), default=0)
    winners = tuple(facts[indices[m[0]]].predicted for m in groups if len(m) == top)
    votes = []
    for pos in range(len(indices)):
        g = group_of.get(pos)
        if g is None:
            votes.append(Vote(None, 0.0, winners))
        else:
            votes.append(Vote(len(groups[g]) == top, len(groups[g]) / len(indices), winners))
    return votes


def _prefer_recorded(f: TraceFacts, computed: Vote) -> Vote:
    meta = f.trace.metadata
    share = meta.get("vote_share")
    share = float(share) if isinstance(share, (int, float)) and not isinstance(share, bool) else computed.vote_share
    majority = meta.get("majority_answer")
    majority_answers = (str(majority),) if majority is not None else computed.majority_answers
    agrees = meta.get("agrees_with_majority")
    if not isinstance(agrees, bool):
        if majority is not None:
            agrees = None if f.predicted is None else judge(f.predicted, str(majority), f.answer_type,
                                                             f.trace.choices)
        else:
            agrees = computed.agrees
    return Vote(agrees, share, majority_answers)
