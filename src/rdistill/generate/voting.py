"""Self-consistency: majority vote over the samples of one problem, and when adaptive sampling may stop.

Answers vote together when the shared checker (`rdistill.answers.judge`) calls them equal, so "18", "18.00"
and "$18" are one vote and so are "B" and the text of choice B. A sample without an extractable answer
abstains but still counts in the denominator: 1 answer out of 3 samples is a share of 1/3, not 1.
Ties go to the answer seen first, so a vote is deterministic for a given sample order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rdistill.answers import judge
from rdistill.records import Problem, Trace


@dataclass(frozen=True)
class Vote:
    majority: str | None  # the winning answer as first written, None when no sample had an answer
    top_count: int
    n_samples: int
    labels: tuple[int | None, ...]  # per sample: its answer group (0 = the majority), None = no answer
    majority_correct: bool | None  # None when there is no gold answer

    @property
    def share(self) -> float:
        return self.top_count / self.n_samples if self.n_samples else 0.0


def has_gold(problem: Problem) -> bool:
    return bool(problem.answer and problem.answer.strip())


def majority_vote(answers: list[str | None], problem: Problem) -> Vote:
    """Group `answers` (one per sample, in sample order) with the shared checker and pick the largest group."""
    groups: list[tuple[str, int]] = []  # (representative answer, votes), in order of first appearance
    raw_labels: list[int | None] = []
    for answer in answers:
        if answer is None or not str(answer).strip():
            raw_labels.append(None)
            continue
        for g, (representative, votes) in enumerate(groups):
            if _same_answer(answer, representative, problem):
                groups[g] = (representative, votes + 1)
                raw_labels.append(g)
                break
        else:
            groups.append((answer, 1))
            raw_labels.append(len(groups) - 1)
    if not groups:
        return Vote(None, 0, len(answers), tuple(raw_labels), None)
    winner = max(range(len(groups)), key=lambda g: (groups[g][1], -g))
    # Relabel so that the majority is group 0; the others keep their order of appearance.
    order = [winner] + [g for g in range(len(groups)) if g != winner]
    relabel = {old: new for new, old in enumerate(order)}
    labels = tuple(None if x is None else relabel[x] for x in raw_labels)
    majority, top = groups[winner]
    correct = judge(majority, problem.answer, problem.answer_type, problem.choices) if has_gold(problem) else None
    return Vote(majority, top, len(answers), labels, correct)


def _same_answer(a: str, b: str, problem: Problem) -> bool:
    # judge() normalises its second argument as the gold answer; checking both ways keeps grouping symmetric.
    return judge(a, b, problem.answer_type, problem.choices) or judge(b, a, problem.answer_type, problem.choices)


def vote_metadata(vote: Vote, sample_position: int) -> dict:
    """What each trace records about the vote it took part in."""
    agrees = vote.labels[sample_position] == 0 if vote.majority is not None else False
    return {
        "majority_answer": vote.majority,
        "vote_share": round(vote.share, 4),
        "n_votes": vote.n_samples,
        "agrees_with_majority": agrees,
        "majority_correct": vote.majority_correct,
    }


# ------------------------------------------------------------------------------------------- adaptive

@dataclass(frozen=True)
class StopRule:
    threshold: float
    max_samples: int
    gold_shortcut: bool  # --adaptive-gold: one sample that matches the gold answer is enough


def first_round_size(rule: StopRule, problem: Problem) -> int:
    # Agreement needs two samples; a gold match needs one.
    wanted = 1 if rule.gold_shortcut and has_gold(problem) else 2
    return min(wanted, rule.max_samples)


def stop_reason(vote: Vote, rule: StopRule, tried: int | None = None) -> str | None:
    """'agreement', 'gold' or 'cap' once sampling this problem may stop; None while it should go on.

    `tried` counts failed calls too (default: the samples voted on), so a teacher that keeps failing still
    reaches the cap.
    """
    tried = vote.n_samples if tried is None else tried
    if vote.majority is not None and vote.share >= rule.threshold:
        if vote.top_count >= 2:
            return "agreement"
        if rule.gold_shortcut and vote.majority_correct:
            return "gold"
    if tried >= rule.max_samples:
        return "cap"
    return None


def next_round_size(vote: Vote, rule: StopRule, tried: int | None = None) -> int:
    """The fewest further samples that could end sampling, if they all agree with the current majority.

    Asking for exactly that many (rather than one at a time) saves rounds; asking for more could waste calls.
    """
    n, top, t = vote.n_samples, vote.top_count, rule.threshold
    room = rule.max_samples - (n if tried is None else tried)
    if room <= 0:
        return 0
    if t >= 1.0:
        needed = room if top < n else max(1, 2 - top)
    else:
        needed = max(1, math.ceil((t * n - top) / (1 - t) - 1e-9), 2 - top)
    return min(needed, room)


def answers_of(traces: list[Trace]) -> list[str | None]:
    return [t.predicted_answer for t in traces]
