"""Accuracy, maj@k, pass@k and accuracy by steps from per-sample results judged by the shared checker."""

from __future__ import annotations

import pytest

from rdistill.answers import check
from rdistill.evaluate.accuracy import accuracy_summary, majority_answer
from rdistill.records import EvalResult
from rdistill.stats import wilson_interval


def result(pid: str, text: str, gold: str, sample: int = 0, difficulty: int | None = None, choices=None):
    verdict = check(text, gold, None, choices)
    return EvalResult(model="m", bench="b", problem_id=pid, question="q", answer=gold, choices=choices,
                      prediction=text, extracted=verdict.extracted, correct=verdict.correct, sample_index=sample,
                      difficulty=difficulty)


def test_one_sample_accuracy_carries_interval_and_n():
    results = [result("p1", "The answer is 5.", "5"), result("p2", "The answer is 4.", "5"),
               result("p3", "no idea", "5"), result("p4", "The answer is 5", "5")]
    summary = accuracy_summary(results)
    acc = summary["accuracy"]
    assert acc["value"] == 0.5 and acc["n"] == 4
    assert 0.0 <= acc["ci"][0] <= 0.5 <= acc["ci"][1] <= 1.0
    assert summary["unanswered"] == 1  # "no idea" has no number at all
    assert "pass@1" not in summary


def test_majority_merges_equal_forms_and_breaks_ties_by_order():
    samples = [result("p", "The answer is 0.5", "1/2", k) for k in range(2)]
    samples += [result("p", "The answer is 1/2", "1/2", 2), result("p", "The answer is 3", "1/2", 3),
                result("p", "The answer is 3", "1/2", 4)]
    assert majority_answer(samples) == "0.5"  # 0.5 and 1/2 are one answer with three votes
    tie = [result("q", "The answer is 7", "7", 0), result("q", "The answer is 8", "7", 1)]
    assert majority_answer(tie) == "7"


def test_maj_at_k_and_pass_at_k():
    results = []
    # p1: majority right; p2: one of three right (pass, not maj); p3: none right.
    for k, text in enumerate(["The answer is 5", "The answer is 5", "The answer is 6"]):
        results.append(result("p1", text, "5", k))
    for k, text in enumerate(["The answer is 1", "The answer is 1", "The answer is 9"]):
        results.append(result("p2", text, "9", k))
    for k in range(3):
        results.append(result("p3", "The answer is 0", "2", k))
    summary = accuracy_summary(results)
    assert summary["samples"] == 3
    assert summary["maj@3"]["value"] == pytest.approx(1 / 3)
    assert summary["pass@3"]["value"] == pytest.approx(2 / 3)
    assert summary["sample_accuracy"]["value"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert summary["accuracy"] == summary["maj@3"] and summary["accuracy"]["n"] == 3


def test_accuracy_by_steps_groups_problems_by_difficulty():
    results = [result("a", "The answer is 1", "1", difficulty=1), result("b", "The answer is 2", "2", difficulty=1),
               result("c", "The answer is 0", "3", difficulty=3), result("d", "The answer is 4", "4")]
    by_steps = accuracy_summary(results)["by_steps"]
    assert [(row["steps"], row["value"], row["n"]) for row in by_steps] == [(1, 1.0, 2), (3, 0.0, 1)]
    assert all(row["ci"] is not None for row in by_steps)


def test_choice_letters_and_booleans_are_judged_by_the_shared_checker():
    letters = result("c", "Oxygen is not taken in... The answer is (B).", "B",
                     choices=["oxygen", "carbon dioxide", "helium"])
    boolean = result("y", "Whales breathe air and nurse their young. So the answer is yes.", "yes")
    wrong_boolean = result("z", "The answer is no.", "yes")
    assert (letters.extracted, letters.correct) == ("B", True)
    assert (boolean.extracted, boolean.correct) == ("yes", True)
    assert (wrong_boolean.extracted, wrong_boolean.correct) == ("no", False)


@pytest.mark.parametrize("right", [0, 50])
def test_all_wrong_or_all_right_keeps_a_wilson_interval_of_nonzero_width(right):
    results = [result(f"p{i}", f"The answer is {5 if i < right else 4}", "5", difficulty=1 + i % 2)
               for i in range(50)]
    summary = accuracy_summary(results)
    acc = summary["accuracy"]
    assert (acc["value"], acc["n"]) == (right / 50, 50)
    assert acc["ci"] == list(wilson_interval(right, 50)) and acc["ci"][1] - acc["ci"][0] > 0.05
    for row in summary["by_steps"]:  # 25 problems of each difficulty, all right or all wrong
        assert row["n"] == 25 and row["ci"] == list(wilson_interval(25 * right // 50, 25))


def test_with_several_samples_the_proportion_is_still_over_problems():
    # 50 problems x 3 samples, every sample wrong: maj@3, pass@3 and per-sample accuracy are 0 of 50 problems
    results = [result(f"p{i}", "The answer is 4", "5", k) for i in range(50) for k in range(3)]
    summary = accuracy_summary(results)
    for key in ("maj@3", "pass@3", "sample_accuracy"):
        assert summary[key]["n"] == 50 and summary[key]["ci"] == list(wilson_interval(0, 50)), key


def test_answers_cut_off_at_max_tokens_are_counted_and_unknown_ones_are_not():
    results = [result(f"p{i}", "The answer is 5", "5") for i in range(4)]
    for r, cut in zip(results, [True, False, True, None]):  # None: an old result file does not say
        r.truncated = cut
    assert accuracy_summary(results)["truncated"] == {"cut_off": 2, "known": 3, "answers": 4}
