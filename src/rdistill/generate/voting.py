"""Self-consistency: majority vote over the samples of one problem, and when adaptive sampling may stop.

Answers vote together when the shared checker (`rdistill.answers.judge`) calls them equal, so "18", "18.00"
and "$18" are one vote and so are "B" and the text of choice B. A sample without an extractable answer
abstains but still counts in the denominator: 1 answer out of 3 samples is a share of 1/3, not 1.
Ties go to the answer seen first, so a vote is deterministic for a given sample order.

Adaptive sampling (`StopRule`) applies one vote test: the top answer holds at least `--min-agreeing` samples and
the `--vote-threshold` share. It stops a problem once the test passes and the lead is decisive: the Beta
posterior favours the top answer over the runner-up with probability >= `--vote-confidence` (Aggarwal et al.
2023), or (`--settle`) the lead is larger than the samples left before `--max-samples`, so sampling on could not
change the majority. With `--stop-futile` it also stops once not even the best continuation could pass the test
at the cap: such a problem would be dropped whatever came next, so those calls buy nothing. A problem that stops
without agreement is kept only if its samples pass the test (`vote_decided`), which at the cap is what a fixed
run of `--max-samples` samples filtered with the same threshold keeps; otherwise none of its samples agrees with
the majority and a majority filter drops them all. Stopping on two agreeing samples (an earlier rule) kept
problems whose two samples agreed on a wrong answer; bench/adaptive_vs_fixed.py measures the variants against
fixed sampling. With `--adaptive-gold` a problem with gold stops at the first sample that matches it instead.
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


def vote_metadata(vote: Vote, sample_position: int, decided: bool | None = None, *,
                  drop_undecided: bool = True) -> dict:
    """What each trace records about the vote it took part in.

    `decided` (adaptive sampling, see `vote_decided`) is recorded as `vote_decided`. With `drop_undecided`, an
    undecided vote has no majority to agree with: no sample `agrees_with_majority`, so a majority filter
    (`rdistill filter --majority`, or any trace without gold) drops the whole problem, as it would drop a fixed
    run whose vote fails the same threshold. `majority_answer` still names the most frequent answer.
    """
    agrees = vote.labels[sample_position] == 0 if vote.majority is not None else False
    out = {
        "majority_answer": vote.majority,
        "vote_share": round(vote.share, 4),
        "n_votes": vote.n_samples,
        "agrees_with_majority": agrees and (decided is not False or not drop_undecided),
        "majority_correct": vote.majority_correct,
    }
    if decided is not None:
        out["vote_decided"] = decided
    return out


# ------------------------------------------------------------------------------------------- adaptive

@dataclass(frozen=True)
class StopRule:
    """When adaptive sampling of one problem stops (`stop_reason`), and whether its vote is kept (`vote_decided`).

    The vote test: the top answer has at least `min_agreeing` votes and at least the `threshold` share of the
    samples voted on. Sampling stops with
    - "agreement": the vote test passes and the lead is decisive: the Beta posterior favours the top answer over
      the runner-up with probability >= `confidence`, or (`settle`) its lead is larger than the samples left, so
      the cap's majority is already known;
    - "futile" (`futility`): not even the best continuation (every remaining sample agreeing with the top answer)
      could pass the vote test at the cap, so the problem would be dropped whatever came next;
    - "cap": `max_samples` attempts.
    A problem's majority is kept when it stopped on agreement or, stopped otherwise, its samples pass the vote
    test: at the cap that is the test a fixed run of `max_samples` with the same threshold applies. Settling
    fixes the cap's majority, not its verdict: 3 of 3 with 2 left stops and is kept, where the cap might have
    seen 3 of 5 and failed a 0.7 test. The Beta stop at 0.95 needs 4 unanimous samples, which at a cap of 5
    every continuation passes.

    The defaults are the rule `--adaptive` uses. `StopRule(t, cap, False, confidence=1, settle=False, futility=True)`
    stops only where the problem is lost anyway: it keeps exactly the traces a fixed run of `cap` samples filtered
    by the same vote test keeps, for fewer calls. `StopRule(t, cap, False, confidence=0, settle=False,
    min_agreeing=2)` is the rule before the Beta criterion (stop at a share >= t with two agreeing samples).
    """

    threshold: float  # --vote-threshold: the top answer's share of the samples must reach this
    max_samples: int
    gold_shortcut: bool  # --adaptive-gold: where gold exists, stop at the first sample that matches it
    confidence: float = 0.95  # --vote-confidence: the Beta posterior must favour the top answer this much...
    settle: bool = True  # ...or (--settle) the top answer's lead must be one the remaining samples cannot overturn
    min_agreeing: int = 3  # --min-agreeing: the vote test never passes on fewer agreeing samples
    futility: bool = False  # --stop-futile: stop once the vote test can no longer pass at the cap


def lead_confidence(top: int, second: int) -> float:
    """P(the top answer is likelier than the runner-up) after `top` vs `second` votes, under a uniform prior.

    The Beta stopping criterion of Aggarwal et al. 2023 ("Let's Sample Step by Step: Adaptive-Consistency"):
    with p ~ Beta(top + 1, second + 1) the share of the top answer among the two, this is P(p > 1/2). For whole
    counts it equals P(Binomial(top + second + 1, 1/2) <= top), which is exact and needs no special functions.
    Unanimous samples reach 0.875 with 2 votes, 0.9375 with 3 and 0.969 with 4; 3 against 1 gives 0.8125.
    It never reaches 1, so a confidence of 1 turns the Beta stop off.
    """
    n = top + second + 1
    return sum(math.comb(n, i) for i in range(top + 1)) / 2 ** n


def passes_vote_test(top: int, n_samples: int, rule: StopRule) -> bool:
    """`top` agreeing votes of `n_samples` reach `min_agreeing` and the `threshold` share."""
    return n_samples > 0 and top >= rule.min_agreeing and top / n_samples >= rule.threshold


def _decisive(top: int, second: int, n_samples: int, tried: int, rule: StopRule) -> bool:
    """Whether `top` votes of `n_samples` (after `tried` attempts) are enough agreement to stop."""
    if not passes_vote_test(top, n_samples, rule):
        return False
    # Once the lead exceeds the samples left, the cap's majority is already known: more samples would only
    # confirm it. Stopping there gives the same majority as sampling to the cap, for fewer calls.
    settled = rule.settle and top - second > rule.max_samples - tried
    return settled or lead_confidence(top, second) >= rule.confidence


def _futile(top: int, n_samples: int, tried: int, rule: StopRule) -> bool:
    """Whether no continuation to the cap can pass the vote test: not even every remaining sample agreeing with
    the top answer (the best any answer can do; a sample that fails or abstains only lowers the count)."""
    left = rule.max_samples - tried
    return rule.futility and left > 0 and not passes_vote_test(top + left, n_samples + left, rule)


def _gold_decides(vote: Vote, rule: StopRule) -> bool:
    # With gold, agreement on a wrong answer is worth nothing to a filter that keeps gold-correct traces, so the
    # gold shortcut replaces the agreement rule rather than adding to it.
    return rule.gold_shortcut and vote.gold_matched is not None


def stop_reason(vote: Vote, rule: StopRule, tried: int | None = None) -> str | None:
    """'gold', 'agreement', 'futile' or 'cap' once sampling this problem may stop; None while it should go on.

    `tried` counts failed calls too (default: the samples voted on), so a teacher that keeps failing still
    reaches the cap.
    """
    tried = vote.n_samples if tried is None else tried
    if _gold_decides(vote, rule):
        if vote.gold_matched:
            return "gold"
    elif vote.majority is not None and _decisive(vote.top_count, vote.second_count, vote.n_samples, tried, rule):
        return "agreement"
    elif _futile(vote.top_count, vote.n_samples, tried, rule):
        return "futile"
    if tried >= rule.max_samples:
        return "cap"
    return None


def vote_decided(vote: Vote, rule: StopRule, reason: str | None) -> bool:
    """Whether the majority of a problem whose sampling stopped for `reason` is kept.

    Stopped on agreement: yes. Otherwise (cap, futile, gold, a budget stop) only if its samples pass the vote
    test, with no posterior asked for: at the cap that is exactly what a fixed run of `max_samples` samples
    filtered with the same threshold keeps. A futile stop never passes (the best continuation would not).
    """
    if vote.majority is None:
        return False
    return reason == "agreement" or passes_vote_test(vote.top_count, vote.n_samples, rule)


def first_round_size(rule: StopRule, problem: Problem) -> int:
    """A gold match needs one sample; agreement needs as many as the fewest unanimous samples that stop."""
    if rule.gold_shortcut and has_gold(problem):
        return min(1, rule.max_samples)
    return _fewest_to_stop(0, 0, 0, 0, rule)


def next_round_size(vote: Vote, rule: StopRule, tried: int | None = None) -> int:
    """The fewest further samples after which sampling could end: by agreement if they all agree with the
    current majority, or as futile if none of them does.

    No stop is possible inside a round of that size, so asking for exactly that many (rather than one at a time)
    saves rounds and never a call, and the rule stops at the same sample as checking after every one.
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
        if (_decisive(top + k, second, n_samples + k, tried + k, rule)
                or _futile(top, n_samples + k, tried + k, rule)):  # k samples that all abstain
            return k
    return room  # nothing short of the cap can stop it


def answers_of(traces: list[Trace]) -> list[str | None]:
    return [t.predicted_answer for t in traces]
