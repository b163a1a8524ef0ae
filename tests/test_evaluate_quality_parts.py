"""The pure parts of the reasoning-quality metrics: reasoning edits (body, truncation, corruption), the
early-answering score, the coherence judge's parsed scores and the checker's step scores."""

from __future__ import annotations

import pytest

from rdistill.evaluate.coherence import checker_step_scores, coherence, parse_judge_scores
from rdistill.evaluate.faithfulness import (NEW_TURN, PREFILL, REFERENCE_POINT, LogprobPairs, early_answer,
                                            early_answer_requests, early_answering_score, logprob_gain,
                                            same_answer)
from rdistill.evaluate.reasoning_edits import altered_number, corrupt_step, reasoning_body, truncate
from rdistill.records import Problem
from rdistill.steps import check_steps

TRACE = ("Step 1: Janet has 16 - 3 - 4 = 9 eggs left.\n"
         "Step 2: She sells them for 9 * 2 = 18 dollars.\n"
         "The answer is 18.")
PROBLEM = Problem(id="p", question="How much does Janet make?", answer="18")
MESSAGES = (("user", "How much does Janet make?"),)


def test_reasoning_body_stops_where_the_answer_is_stated():
    assert reasoning_body(TRACE) == TRACE.rsplit("\n", 1)[0]
    assert reasoning_body("12 + 30 = 42. So the answer is 42") == "12 + 30 = 42."
    assert reasoning_body("no answer stated") == "no answer stated"


def test_truncation_keeps_a_share_of_the_words_with_layout():
    body = reasoning_body(TRACE)
    assert truncate(body, 0.0) == ""
    half = truncate(body, 0.5)
    assert body.startswith(half) and 0.4 < len(half.split()) / len(body.split()) < 0.6
    assert truncate(body, 0.75).count("\n") == 1  # the line break between the steps is kept
    assert truncate(body, 1.0) == body


def test_corruption_alters_an_intermediate_result_and_cuts_after_it():
    corruption = corrupt_step(reasoning_body(TRACE))
    assert corruption.step == 1 and corruption.original == "9" and corruption.corrupted != "9"
    assert corruption.prefix == f"Step 1: Janet has 16 - 3 - 4 = {corruption.corrupted} eggs left."
    assert check_steps(corruption.prefix).first_wrong_step == 1  # the altered claim no longer re-computes


def test_corruption_without_claims_changes_a_number_of_an_earlier_line_or_gives_up():
    corruption = corrupt_step("Tom had 12 apples.\nHe gave some away.\nNow he is happy.")
    assert (corruption.original, corruption.prefix) == ("12", f"Tom had {corruption.corrupted} apples.")
    assert corrupt_step("No numbers here.\nNor here.") is None


@pytest.mark.parametrize("written, expected", [("3", "4"), ("21", "25"), ("0.5", "0.6"), ("1,200", "1,440")])
def test_altered_numbers_differ_and_keep_their_form(written, expected):
    assert altered_number(written) == expected


def test_early_answer_requests_cut_the_reasoning_and_ask_once_more_for_the_whole():
    body = reasoning_body(TRACE)
    requests = early_answer_requests(MESSAGES, body, (0.0, 0.5), NEW_TURN, 16)
    assert [p for p, _ in requests] == [0.0, 0.5, REFERENCE_POINT]
    zero, half, whole = (r.messages for _, r in requests)
    assert [role for role, _ in zero] == ["user"]  # nothing to show: the request joins the question
    assert [role for role, _ in half] == ["user", "assistant", "user"]
    assert half[1][1] == truncate(body, 0.5) and whole[1][1] == body
    prefilled = early_answer_requests(MESSAGES, body, (0.5,), PREFILL, 16)[0][1]
    assert prefilled.messages[-1][0] == "assistant" and prefilled.messages[-1][1].endswith("So the answer is")
    assert prefilled.params.stop == ("\n",) and prefilled.params.temperature == 0


def test_early_answer_reads_a_prefilled_continuation():
    assert early_answer(PROBLEM, " 18.", PREFILL) == "18"
    assert early_answer(PROBLEM, "The answer is 18.", NEW_TURN) == "18"


def test_early_answering_score_counts_cut_points_whose_answer_changes():
    changing = {0.0: "7", 0.25: "12", 0.5: "18", 0.75: "18.0", REFERENCE_POINT: "18"}
    fixed = {0.0: "18", 0.25: "18", 0.5: "18", 0.75: "18", REFERENCE_POINT: "18"}
    assert early_answering_score(PROBLEM, changing, NEW_TURN)["score"] == 0.5  # 18.0 is the same answer as 18
    assert early_answering_score(PROBLEM, fixed, NEW_TURN)["score"] == 0.0
    assert same_answer(None, None, PROBLEM) and not same_answer(None, "18", PROBLEM)


def test_logprob_gain_is_the_answers_gain_from_the_reasoning():
    pairs = LogprobPairs.build("Step 1: 9 * 2 = 18", "18")
    assert pairs.with_answer == "Step 1: 9 * 2 = 18\n\nSo the answer is 18"
    assert pairs.without_answer == "So the answer is 18"
    gain = logprob_gain([-5.0, -4.0, -9.0, -3.0])  # log P(a|q,r) = -1, log P(a|q) = -6
    assert gain["gain"] == pytest.approx(5.0)


def test_judge_scores_are_parsed_and_bounded():
    reply = "Step 1: 0.9\n**Step 2**: 4/5\nStep 3 - 1\nStep 4: 7\nStep 9: 0.5\nstep 2: 0.1"
    assert parse_judge_scores(reply, [1, 2, 3, 4]) == {1: 0.9, 2: 0.8, 3: 1.0}
    assert parse_judge_scores("I cannot grade this.", [1]) == {}


def test_coherence_prefers_the_checker_and_counts_each_source():
    report = check_steps("Step 1: 2 + 2 = 5\nStep 2: Then we think.\nStep 3: 5 * 2 = 10\nThe answer is 10")
    checked = checker_step_scores(report)
    assert checked == {1: 0.0, 3: 1.0}
    result = coherence(report.n_steps, checked, {1: 1.0, 2: 0.5})
    assert result["score"] == pytest.approx((0.0 + 0.5 + 1.0) / 3)
    assert (result["n_checked"], result["n_judged"]) == (2, 1)
    assert coherence(2, {}, {})["score"] is None
