"""Self-consistency votes and the adaptive stopping rule, as pure functions."""

from __future__ import annotations

import itertools
import math

import pytest

from rdistill.generate.voting import (StopRule, first_round_size, lead_confidence, majority_vote, next_round_size,
                                      stop_reason, vote_metadata)
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
LEGACY = StopRule(threshold=0.7, max_samples=8, gold_shortcut=False, confidence=0.0, settle=False)


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
    (["1", "2"], StopRule(0.5, 8, False, confidence=0.0, settle=False), 1),  # 2/3
    (["1", "2", "3"], StopRule(0.7, 5, False, confidence=0.0, settle=False), 2),  # limited by the cap
    (["1", "2"], StopRule(1.0, 6, False, confidence=0.0, settle=False), 4),  # unanimity out of reach: the cap
    (["1"], StopRule(1.0, 6, False, confidence=0.0, settle=False), 1),
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
