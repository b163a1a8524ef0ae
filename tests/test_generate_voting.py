"""Self-consistency votes and the adaptive stopping rule, as pure functions."""

from __future__ import annotations

import pytest

from rdistill.generate.voting import (StopRule, first_round_size, majority_vote, next_round_size, stop_reason,
                                      vote_metadata)
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


RULE = StopRule(threshold=0.7, max_samples=8, gold_shortcut=False)
GOLD_RULE = StopRule(threshold=0.7, max_samples=8, gold_shortcut=True)


@pytest.mark.parametrize("answers, rule, expected", [
    (["18", "18"], RULE, "agreement"),
    (["18"], RULE, None),  # one sample never agrees with anything
    (["18"], GOLD_RULE, "gold"),  # ...unless it matches gold and the shortcut is on
    (["17"], GOLD_RULE, None),
    (["18", "17"], GOLD_RULE, None),  # 1/2 < 0.7 even though 18 is gold
    (["18", "17", "18", "18"], RULE, "agreement"),  # 3/4
    (["18", "17", "18"], RULE, None),  # 2/3 < 0.7
    (["1", "2", "3", "4", "5", "6", "7", "8"], RULE, "cap"),
    ([None, None], RULE, None),
])
def test_stop_reason(answers, rule, expected):
    assert stop_reason(majority_vote(answers, NUMERIC), rule) == expected


def test_failed_calls_count_towards_the_cap():
    assert stop_reason(majority_vote(["1", "2"], NUMERIC), RULE, tried=8) == "cap"


def test_first_round_is_one_sample_only_when_a_gold_match_can_end_it():
    assert first_round_size(RULE, NUMERIC) == 2
    assert first_round_size(GOLD_RULE, NUMERIC) == 1
    assert first_round_size(GOLD_RULE, NO_GOLD) == 2
    assert first_round_size(StopRule(0.7, 1, False), NUMERIC) == 1


@pytest.mark.parametrize("answers, threshold, cap, expected", [
    (["1", "2"], 0.7, 8, 2),  # 3/4 is the first share >= 0.7 reachable
    (["1", "1", "2"], 0.7, 8, 1),  # 3/4
    (["1", "2", "3"], 0.7, 8, 4),  # 5/7
    ([None], 0.7, 8, 3),  # 3/4, and at least two agreeing
    (["1", "2"], 0.5, 8, 1),  # 2/3
    (["1", "2", "3"], 0.7, 5, 2),  # limited by the cap
    (["1", "2"], 1.0, 6, 4),  # unanimity is out of reach: go to the cap
    (["1"], 1.0, 6, 1),
])
def test_next_round_asks_for_the_fewest_samples_that_could_end_it(answers, threshold, cap, expected):
    rule = StopRule(threshold, cap, False)
    k = next_round_size(majority_vote(answers, NUMERIC), rule)
    assert k == expected
    agreeing = answers[0] if majority_vote(answers, NUMERIC).top_count else "9"
    if len(answers) + k < cap:  # k agreeing samples would indeed stop it, and k - 1 would not
        assert stop_reason(majority_vote(answers + [agreeing] * k, NUMERIC), rule) == "agreement"
        assert stop_reason(majority_vote(answers + [agreeing] * (k - 1), NUMERIC), rule) is None
