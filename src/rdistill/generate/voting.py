"""Self-consistency: majority vote over the samples of one problem, and when adaptive sampling may stop.

Answers vote together when the shared checker (`rdistill.answers.judge`) calls them equal, so "18", "18.00"
and "$18" are one vote and so are "B" and the text of choice B. A sample without an extractable answer
abstains but still counts in the denominator: 1 answer out of 3 samples is a share of 1/3, not 1.
Ties go to the answer seen first, so a vote is deterministic for a given sample order.

Adaptive sampling (`StopRule`) stops a problem once its top answer holds the `--vote-threshold` share and its
lead is decisive: the Beta posterior favours it over the runner-up with probability >= 0.95 (Aggarwal et al.
2023), or its lead is larger than the samples left before `--max-samples`, so that sampling on could not change
the majority. Stopping at two agreeing samples (the rule before) kept a problem whose two samples agreed on a
wrong answer, and lost kept-trace accuracy against fixed sampling; bench/adaptive_vs_fixed.py measures both.
With `--adaptive-gold` a problem with a gold answer stops at the first sample that matches it instead.
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
    second_count: int = 0  # votes of the runner-up answer (0 when only one answer was seen)
    gold_matched: bool | None = None  # some sample's answer equals gold; None when there is no gold answer

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
    gold = has_gold(problem)
    if not groups:
        return Vote(None, 0, len(answers), tuple(raw_labels), None, gold_matched=False if gold else None)
    winner = max(range(len(groups)), key=lambda g: (groups[g][1], -g))
    # Relabel so that the majority is group 0; the others keep their order of appearance.
    order = [winner] + [g for g in range(len(groups)) if g != winner]
    relabel = {old: new for new, old in enumerate(order)}
    labels = tuple(None if x is None else relabel[x] for x in raw_labels)
    majority, top = groups[winner]
    second = max((votes for g, (_, votes) in enumerate(groups) if g != winner), default=0)
    if not gold:
        return Vote(majority, top, len(answers), labels, None, second)
    correct = [judge(representative, problem.answer, problem.answer_type, problem.choices)
               for representative, _ in groups]
    return Vote(majority, top, len(answers), labels, correct[winner], second, any(correct))


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
    """When adaptive sampling of one problem stops (see `stop_reason`).

    The defaults are the rule `--adaptive` uses. `StopRule(t, cap, False, confidence=0, settle=False)` is the
    rule before it (stop at a share >= t with two agreeing samples); measured against it in
    bench/adaptive_vs_fixed.py.
    """

    threshold: float  # --vote-threshold: the top answer's share of the samples must reach this
    max_samples: int
    gold_shortcut: bool  # --adaptive-gold: where gold exists, stop at the first sample that matches it
    confidence: float = 0.95  # ...and the Beta posterior must favour the top answer over the runner-up this much
    settle: bool = True  # ...or the top answer's lead must be one the remaining samples cannot overturn
    min_agreeing: int = 2


def lead_confidence(top: int, second: int) -> float:
    """P(the top answer is likelier than the runner-up) after `top` vs `second` votes, under a uniform prior.

    The Beta stopping criterion of Aggarwal et al. 2023 ("Let's Sample Step by Step: Adaptive-Consistency"):
    with p ~ Beta(top + 1, second + 1) the share of the top answer among the two, this is P(p > 1/2). For whole
    counts it equals P(Binomial(top + second + 1, 1/2) <= top), which is exact and needs no special functions.
    Unanimous samples reach 0.875 with 2 votes, 0.9375 with 3 and 0.969 with 4; 3 against 1 gives 0.8125.
    """
    n = top + second + 1
    return sum(math.comb(n, i) for i in range(top + 1)) / 2 ** n


def _decisive(top: int, second: int, n_samples: int, tried: int, rule: StopRule) -> bool:
    """Whether `top` votes of `n_samples` (after `tried` attempts) are enough agreement to stop."""
    if n_samples == 0 or top < rule.min_agreeing or top / n_samples < rule.threshold:
        return False
    # Once the lead exceeds the samples left, the cap's majority is already known: more samples would only
    # confirm it. Stopping there gives the same majority as sampling to the cap, for fewer calls.
    settled = rule.settle and top - second > rule.max_samples - tried
    return settled or lead_confidence(top, second) >= rule.confidence


def _gold_decides(vote: Vote, rule: StopRule) -> bool:
    # With gold, agreement on a wrong answer is worth nothing to a filter that keeps gold-correct traces, so the
    # gold shortcut replaces the agreement rule rather than adding to it.
    return rule.gold_shortcut and vote.gold_matched is not None


def stop_reason(vote: Vote, rule: StopRule, tried: int | None = None) -> str | None:
    """'gold', 'agreement' or 'cap' once sampling this problem may stop; None while it should go on.

    `tried` counts failed calls too (default: the samples voted on), so a teacher that keeps failing still
    reaches the cap.
    """
    tried = vote.n_samples if tried is None else tried
    if _gold_decides(vote, rule):
        if vote.gold_matched:
            return "gold"
    elif vote.majority is not None and _decisive(vote.top_count, vote.second_count, vote.n_samples, tried, rule):
        return "agreement"
    if tried >= rule.max_samples:
        return "cap"
    return None


def first_round_size(rule: StopRule, problem: Problem) -> int:
    """A gold match needs one sample; agreement needs as many as the fewest unanimous samples that stop."""
    if rule.gold_shortcut and has_gold(problem):
        return min(1, rule.max_samples)
    return _fewest_to_stop(0, 0, 0, 0, rule)


def next_round_size(vote: Vote, rule: StopRule, tried: int | None = None) -> int:
    """The fewest further samples that could end sampling, if they all agree with the current majority.

    Asking for exactly that many (rather than one at a time) saves rounds; asking for more could waste calls.
    """
    tried = vote.n_samples if tried is None else tried
    if tried >= rule.max_samples:
        return 0
    if _gold_decides(vote, rule):
        return 1  # any sample may be the gold match
    return _fewest_to_stop(vote.top_count, vote.second_count, vote.n_samples, tried, rule)


def _fewest_to_stop(top: int, second: int, n_samples: int, tried: int, rule: StopRule) -> int:
    room = rule.max_samples - tried
    for k in range(1, room):
        if _decisive(top + k, second, n_samples + k, tried + k, rule):
            return k
    return room  # nothing short of the cap can stop it


def answers_of(traces: list[Trace]) -> list[str | None]:
    return [t.predicted_answer for t in traces]
