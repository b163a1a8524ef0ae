"""Self-consistency votes and the adaptive stopping rule, as pure functions."""

from __future__ import annotations

import functools
import itertools
import math

import pytest

from rdistill.errors import InputError
from rdistill.generate import GenerationOptions
from rdistill.generate.voting import (StopRule, Vote, first_round_size, lead_confidence, majority_vote,
                                      next_round_size, passes_vote_test, stop_reason, vote_decided, vote_metadata)
from rdistill.records import Problem

NUMERIC = Problem(id="n", question="How much?", answer="18")
CHOICE = Problem(id="c", question="Which?", answer="B", choices=["red", "blue", "green"])
NO_GOLD = Problem(id="x", question="How much?", answer="", answer_type="numeric")


def test_answers_the_checker_calls_equal_vote_together():
    vote = majority_vote(["18", "$18.00", "17", "18 dollars"], NUMERIC)
    assert (vote.majority, vote.top_count, vote.n_samples) == ("18", 3, 4)
    assert vote.labels == (0, 0, 1, 0) and vote.share == 0.75 and vote.majority_correct is True


def test_a_choice_letter_and_the_choice_text_vote_together():
    vote = majority_vote(["blue", "A", "B"], CHOICE)
    assert vote.top_count == 2 and vote.labels == (0, 1, 0) and vote.majority_correct is True


def test_samples_without_an_answer_abstain_but_count_in_the_share():
    vote = majority_vote([None, "17", None], NUMERIC)
    assert vote.majority == "17" and vote.share == pytest.approx(1 / 3) and vote.labels == (None, 0, None)
    assert vote.majority_correct is False
    empty = majority_vote([None, " "], NUMERIC)
    assert empty.majority is None and empty.share == 0 and empty.majority_correct is None


def test_a_tie_goes_to_the_answer_seen_first_and_the_majority_is_group_zero():
    vote = majority_vote(["5", "7", "7", "5"], NUMERIC)
    assert vote.majority == "5" and vote.labels == (0, 1, 1, 0)
    later = majority_vote(["5", "7", "7"], NUMERIC)
    assert later.majority == "7" and later.labels == (1, 0, 0)


def test_without_gold_the_vote_says_nothing_about_correctness():
    assert majority_vote(["3", "3"], NO_GOLD).majority_correct is None


def test_vote_metadata_per_sample():
    vote = majority_vote(["18", "17", "18"], NUMERIC)
    assert vote_metadata(vote, 1) == {"majority_answer": "18", "vote_share": 0.6667, "n_votes": 3,
                                      "agrees_with_majority": False, "majority_correct": True}
    assert vote_metadata(vote, 2)["agrees_with_majority"] is True
    assert vote_metadata(majority_vote([None], NUMERIC), 0)["agrees_with_majority"] is False


def test_the_vote_knows_the_runner_up_and_whether_any_sample_matched_gold():
    vote = majority_vote(["17", "18", "17", "5", "18", "17"], NUMERIC)
    assert (vote.majority, vote.top_count, vote.second_count) == ("17", 3, 2)
    assert vote.majority_correct is False and vote.gold_matched is True
    assert majority_vote(["17", "5"], NUMERIC).gold_matched is False
    assert majority_vote([None], NUMERIC).gold_matched is False
    assert majority_vote(["18"], NO_GOLD).gold_matched is None


@pytest.mark.parametrize("top, second, expected", [
    (1, 0, 0.75), (2, 0, 0.875), (3, 0, 0.9375), (4, 0, 0.96875), (3, 1, 0.8125), (2, 2, 0.5), (0, 3, 0.0625),
])
def test_lead_confidence_is_the_beta_posterior_probability_that_the_top_answer_is_likelier(top, second, expected):
    assert lead_confidence(top, second) == pytest.approx(expected)


def test_lead_confidence_matches_a_numeric_integral_of_the_beta_density():
    # P(p > 1/2) for p ~ Beta(a, b), by the midpoint rule, against the closed form used by the rule.
    for top, second in [(5, 2), (7, 3), (4, 4), (9, 1)]:
        a, b, n = top + 1, second + 1, 20000
        norm = math.gamma(a + b) / (math.gamma(a) * math.gamma(b))
        xs = [(i + 0.5) / n for i in range(n)]
        above = sum(norm * x ** (a - 1) * (1 - x) ** (b - 1) for x in xs if x > 0.5) / n
        assert lead_confidence(top, second) == pytest.approx(above, abs=1e-6)


RULE = StopRule(threshold=0.7, max_samples=8, gold_shortcut=False)
CAP5 = StopRule(threshold=0.7, max_samples=5, gold_shortcut=False)
GOLD_RULE = StopRule(threshold=0.7, max_samples=8, gold_shortcut=True)
# The rule before the Beta criterion: any share >= threshold with two agreeing samples.
LEGACY = StopRule(threshold=0.7, max_samples=8, gold_shortcut=False, confidence=0.0, settle=False, min_agreeing=2)


@pytest.mark.parametrize("answers, rule, expected", [
    (["18", "18"], RULE, None),  # 2 of 2 agree, but the Beta posterior is only 0.875 < 0.95
    (["18", "18", "18"], RULE, None),  # 0.9375
    (["18", "18", "18", "18"], RULE, "agreement"),  # 0.969
    (["18", "18", "17", "18", "18"], RULE, None),  # 4 against 1: 0.89, and 3 samples left could still tie
    (["18", "18", "18"], CAP5, "agreement"),  # a lead of 3 with 2 samples left: the cap's majority is settled
    (["18", "17", "18", "18"], CAP5, "agreement"),  # a lead of 2 with 1 left
    (["18", "17", "18"], CAP5, None),  # a lead of 1 with 2 left: 17 could still win
    (["18", None, "18", None], CAP5, None),  # settled, but a share of 1/2 is under the threshold
    (["1", "2", "3", "4", "5"], CAP5, "cap"),
    ([None, None], RULE, None),
    (["18", "18"], LEGACY, "agreement"),
    (["18", "17", "18", "18"], LEGACY, "agreement"),  # 3/4
    (["18", "17", "18"], LEGACY, None),  # 2/3 < 0.7
    (["18"], LEGACY, None),  # one sample never agrees with anything
])
def test_stop_reason(answers, rule, expected):
    assert stop_reason(majority_vote(answers, NUMERIC), rule) == expected


@pytest.mark.parametrize("answers, expected", [
    (["18"], "gold"),
    (["17", "5", "18"], "gold"),  # the first matching sample ends it, whatever the vote
    (["17", "17", "17", "17", "17"], None),  # agreement on a wrong answer does not: the filter would drop it all
    (["17"] * 8, "cap"),
])
def test_the_gold_shortcut_stops_at_the_first_gold_match_and_only_there(answers, expected):
    assert stop_reason(majority_vote(answers, NUMERIC), GOLD_RULE) == expected


def test_without_gold_the_gold_shortcut_falls_back_to_agreement():
    assert stop_reason(majority_vote(["3"] * 4, NO_GOLD), GOLD_RULE) == "agreement"
    assert first_round_size(GOLD_RULE, NO_GOLD) == first_round_size(RULE, NO_GOLD) == 4


def test_failed_calls_count_towards_the_cap():
    assert stop_reason(majority_vote(["1", "2"], NUMERIC), RULE, tried=8) == "cap"


def test_the_first_round_is_the_fewest_unanimous_samples_that_stop():
    assert first_round_size(RULE, NUMERIC) == 4  # Beta: 4 unanimous votes reach 0.969
    assert first_round_size(CAP5, NUMERIC) == 3  # settled: a lead of 3 with 2 left
    assert first_round_size(LEGACY, NUMERIC) == 2
    assert first_round_size(StopRule(0.7, 8, False, confidence=0.0, settle=False), NUMERIC) == 3  # 3 agreeing
    assert first_round_size(GOLD_RULE, NUMERIC) == 1
    assert first_round_size(StopRule(0.7, 1, False), NUMERIC) == 1


@pytest.mark.parametrize("answers, rule, expected", [
    (["1", "2"], RULE, 4),  # 5 against 1 with 2 left is settled (before the Beta rule's 6 against 1)
    (["1", "2"], CAP5, 2),  # 3 against 1 with 1 left
    (["1", "1", "2"], CAP5, 1),  # a lead of 2 with 1 left
    (["1", "2", "1"], CAP5, 1),
    ([None], CAP5, 3),  # a lead of 3 with 1 left, and 3/4 >= 0.7
    (["1", "2"], LEGACY, 2),  # 3/4 is the first share >= 0.7 reachable
    (["1", "1", "2"], LEGACY, 1),  # 3/4
    (["1", "2", "3"], LEGACY, 4),  # 5/7
    ([None], LEGACY, 3),  # 3/4, and at least two agreeing
    (["1", "2"], StopRule(0.5, 8, False, confidence=0.0, settle=False, min_agreeing=2), 1),  # 2/3
    (["1", "2"], StopRule(0.5, 8, False, confidence=0.0, settle=False), 2),  # 3 agreeing by default
    (["1", "2", "3"], StopRule(0.7, 5, False, confidence=0.0, settle=False), 2),  # limited by the cap
    (["1", "2"], StopRule(1.0, 6, False, confidence=0.0, settle=False), 4),  # unanimity out of reach: the cap
    (["1"], StopRule(1.0, 6, False, confidence=0.0, settle=False, min_agreeing=2), 1),
    (["1"], StopRule(1.0, 6, False, confidence=0.0, settle=False), 2),
])
def test_next_round_asks_for_the_fewest_samples_that_could_end_it(answers, rule, expected):
    vote = majority_vote(answers, NUMERIC)
    k = next_round_size(vote, rule)
    assert k == expected
    agreeing = answers[0] if vote.top_count else "9"
    agreeing = vote.majority or agreeing
    if len(answers) + k < rule.max_samples:  # k agreeing samples would indeed stop it, and k - 1 would not
        assert stop_reason(majority_vote(answers + [agreeing] * k, NUMERIC), rule) == "agreement"
        assert stop_reason(majority_vote(answers + [agreeing] * (k - 1), NUMERIC), rule) is None


def test_with_the_gold_shortcut_each_round_is_one_sample():
    assert next_round_size(majority_vote(["17", "17"], NUMERIC), GOLD_RULE) == 1
    assert next_round_size(majority_vote(["17"] * 8, NUMERIC), GOLD_RULE) == 0


def test_settling_early_never_changes_the_majority_the_cap_would_give():
    # Every answer sequence over three answers (and abstentions) up to the cap: wherever the rule stops, no
    # continuation to the cap can change the majority it stopped on.
    cap, alphabet = 5, ["1", "2", "3", None]
    rule = StopRule(0.0, cap, False, confidence=1.0, settle=True)  # settling only: the posterior is always < 1
    for sequence in itertools.product(alphabet, repeat=cap):
        for n in range(1, cap):
            prefix = list(sequence[:n])
            if stop_reason(majority_vote(prefix, NUMERIC), rule) == "agreement":
                assert majority_vote(list(sequence), NUMERIC).majority == majority_vote(prefix, NUMERIC).majority
                break


# ------------------------------------------------------------------------- the vote test, futility, the keep rule

# Stops only where the problem is lost anyway: keeps exactly what 5 fixed samples and the same vote test keep.
EXACT = StopRule(threshold=0.7, max_samples=5, gold_shortcut=False, confidence=1.0, settle=False, futility=True)
# The Beta stop and the futile stop, without settling.
BETA_FUTILE = StopRule(threshold=0.7, max_samples=5, gold_shortcut=False, settle=False, futility=True)
DEFAULT_FUTILE = StopRule(threshold=0.7, max_samples=5, gold_shortcut=False, futility=True)


@pytest.mark.parametrize("top, n, rule, expected", [
    (4, 5, CAP5, True), (3, 5, CAP5, False),  # 0.8 and 0.6 against 0.7
    (3, 3, CAP5, True), (2, 2, CAP5, False),  # three agreeing samples at least, by default
    (2, 2, LEGACY, True), (7, 10, StopRule(0.7, 10, False), True),  # 7/10 is 0.7 exactly, not 0.70000001
    (0, 0, CAP5, False),
])
def test_the_vote_test_needs_the_share_and_the_agreeing_samples(top, n, rule, expected):
    assert passes_vote_test(top, n, rule) is expected


@pytest.mark.parametrize("answers, rule, expected", [
    (["1", "2"], EXACT, None),  # 1 + 3 more agreeing = 4 of 5 could still pass
    (["1", "2", "3"], EXACT, "futile"),  # at best 3 of 5 = 0.6
    ([None, None], EXACT, "futile"),  # at best 3 of 5
    ([None], EXACT, None),  # 4 of 5
    (["1", "1", "2", "2"], EXACT, "futile"),  # at best 3 of 5
    (["1", "1", "1", "2"], EXACT, None),  # 4 of 5 if the last one agrees
    (["1"] * 4, EXACT, None),  # no Beta stop (confidence 1) and no settling: on to the cap
    (["1"] * 5, EXACT, "cap"),
    (["1"] * 4, BETA_FUTILE, "agreement"),  # 0.969 >= 0.95
    (["1"] * 3, BETA_FUTILE, None),  # 0.9375
    (["1"] * 3, DEFAULT_FUTILE, "agreement"),  # settled: a lead of 3 with 2 left
    (["1", "2", "3"], CAP5, None),  # futility is off by default
    (["1", "2", "3", "4", "5"], EXACT, "cap"),  # the cap, not futile: no samples were left to save
])
def test_futile_problems_stop_as_soon_as_the_vote_test_is_out_of_reach(answers, rule, expected):
    assert stop_reason(majority_vote(answers, NUMERIC), rule) == expected


def test_futility_counts_failed_calls_as_spent():
    # 2 samples answered out of 3 attempts: 2 left, so 1 + 2 = 3 of at most 4 answered = 0.75 could still pass;
    # one attempt later, 1 + 1 = 2 agreeing can no longer reach 3.
    vote = majority_vote(["1", "2"], NUMERIC)
    assert stop_reason(vote, EXACT, tried=3) is None
    assert stop_reason(vote, EXACT, tried=4) == "futile"


@pytest.mark.parametrize("answers, reason, expected", [
    (["1", "1", "1"], "agreement", True),  # stopped on agreement: kept
    (["1", "1", "1", "1", "2"], "cap", True),  # 0.8 at the cap
    (["1", "1", "1", "2", "2"], "cap", False),  # 0.6 at the cap: what a fixed run filtered at 0.7 would drop
    (["1", "2", "3"], "futile", False),
    (["1", "1", "1"], "budget", True),  # stopped by the budget: the vote test on what was answered
    ([None, None], "cap", False),
])
def test_a_vote_is_kept_on_agreement_or_when_it_passes_the_vote_test(answers, reason, expected):
    assert vote_decided(majority_vote(answers, NUMERIC), CAP5, reason) is expected


def test_an_undecided_vote_has_no_majority_to_agree_with():
    vote = majority_vote(["17", "17", "17", "18", "5"], NUMERIC)
    undecided = [vote_metadata(vote, i, False) for i in range(5)]
    assert not any(m["agrees_with_majority"] for m in undecided)
    assert all(m["vote_decided"] is False and m["majority_answer"] == "17" for m in undecided)
    kept = [vote_metadata(vote, i, False, drop_undecided=False)["agrees_with_majority"] for i in range(5)]
    assert kept == [True, True, True, False, False]
    assert vote_metadata(vote, 0, True)["agrees_with_majority"] is True
    assert "vote_decided" not in vote_metadata(vote, 0)  # fixed sampling has no keep rule


@functools.lru_cache(maxsize=None)
def vote_of(answers: tuple) -> Vote:
    return majority_vote(list(answers), NUMERIC)


def run_rule(sequence: list, rule: StopRule) -> tuple[int, str, list]:
    """The generator's loop (strategies/base.py) over a given answer sequence: samples taken, reason, votes."""
    taken, tried, batch = [], 0, first_round_size(rule, NUMERIC)
    while True:
        taken += sequence[tried:tried + batch]
        tried += batch
        vote = vote_of(tuple(taken))
        reason = stop_reason(vote, rule, tried)
        if reason is not None:
            return tried, reason, taken
        batch = next_round_size(vote, rule, tried)


def first_stop(sequence: list, rule: StopRule) -> int:
    return next(n for n in range(1, rule.max_samples + 1)
                if stop_reason(vote_of(tuple(sequence[:n])), rule) is not None)


ALL_SEQUENCES = list(itertools.product(["1", "2", "3", None], repeat=5))


@pytest.mark.parametrize("rule", [CAP5, EXACT, BETA_FUTILE, DEFAULT_FUTILE,
                                  StopRule(0.6, 5, False, futility=True, min_agreeing=2)])
def test_rounds_never_skip_a_stop(rule):
    # Asking for several samples at once stops at the same sample as checking after every one.
    for sequence in ALL_SEQUENCES:
        assert run_rule(list(sequence), rule)[0] == first_stop(list(sequence), rule), sequence


def kept_positions(answers: list, rule: StopRule, reason: str | None) -> list[int]:
    vote = vote_of(tuple(answers))
    if reason is None:  # fixed sampling filtered by the same vote test
        keep = vote.majority is not None and passes_vote_test(vote.top_count, vote.n_samples, rule)
    else:
        keep = vote_decided(vote, rule, reason)
    return [i for i, label in enumerate(vote.labels) if keep and label == 0]


def test_stopping_only_when_futile_keeps_exactly_what_fixed_sampling_with_the_vote_test_keeps():
    saved = 0
    for sequence in ALL_SEQUENCES:
        tried, reason, taken = run_rule(list(sequence), EXACT)
        assert kept_positions(taken, EXACT, reason) == kept_positions(list(sequence), EXACT, None), sequence
        saved += 5 - tried
    assert saved > 0


def test_a_decisive_stop_keeps_the_majority_the_cap_would_keep_and_never_a_problem_it_would_drop_at_cap5():
    # With a cap of 5 and threshold 0.7 the Beta stop needs 4 unanimous samples: the cap keeps that answer too.
    for sequence in ALL_SEQUENCES:
        tried, reason, taken = run_rule(list(sequence), BETA_FUTILE)
        kept = kept_positions(taken, BETA_FUTILE, reason)
        fixed = kept_positions(list(sequence), BETA_FUTILE, None)
        assert bool(kept) == bool(fixed) and set(kept) <= set(fixed), sequence


@pytest.mark.parametrize("field, value", [("vote_confidence", 1.5), ("vote_confidence", -0.1),
                                          ("min_agreeing", 0)])
def test_bad_adaptive_knobs_are_input_errors_naming_the_field(field, value):
    with pytest.raises(InputError) as e:
        GenerationOptions(adaptive=True, **{field: value})
    assert e.value.field == field


def test_more_agreeing_samples_than_the_cap_is_an_input_error_only_when_adaptive():
    with pytest.raises(InputError, match="--max-samples 2") as e:
        GenerationOptions(adaptive=True, max_samples=2)
    assert e.value.field == "min_agreeing"
    GenerationOptions(adaptive=True, max_samples=2, min_agreeing=2)
    GenerationOptions(samples=2, max_samples=2)  # fixed sampling has no vote test


def test_the_options_make_the_rule():
    options = GenerationOptions(adaptive=True, vote_threshold=0.6, max_samples=5, vote_confidence=0.9, settle=False,
                                min_agreeing=2, stop_futile=True, adaptive_gold=True)
    assert options.stop_rule() == StopRule(0.6, 5, True, confidence=0.9, settle=False, min_agreeing=2, futility=True)
    assert GenerationOptions(adaptive=True).stop_rule() == StopRule(0.7, 8, False, settle=False, futility=True)
