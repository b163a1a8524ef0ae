"""The filter stage through its Python API: each reason code, its order, and the report's arithmetic."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from rdistill.errors import InputError
from rdistill.filter import REASONS, FilterConfig, SandboxLimits, filter_traces, judge_traces
from rdistill.records import Trace

Q = "Tom has 3 boxes with 4 apples in each box. He eats 2 apples. How many apples are left?"
RIGHT = "Step 1: 3 * 4 = 12 apples in all.\nStep 2: 12 - 2 = 10 apples are left.\nThe answer is 10."


def trace(reasoning: str, answer: str = "10", question: str = Q, **fields) -> Trace:
    return Trace(question=question, answer=answer, reasoning=reasoning, **fields)


def reasons(traces: list[Trace], **config) -> list[str | None]:
    return [d.reason for d in judge_traces(traces, FilterConfig(**config))]


def assert_adds_up(report, n_input: int) -> None:
    assert report.input == n_input
    assert report.kept + sum(report.dropped_by_reason.values()) == n_input
    assert report.dropped == sum(report.dropped_by_reason.values())
    assert sum(s.input for s in report.by_strategy.values()) == n_input
    assert sum(s.kept for s in report.by_strategy.values()) == report.kept
    assert sum(report.steps_histogram["input"].values()) == n_input
    assert sum(report.steps_histogram["kept"].values()) == report.kept


# ---------------------------------------------------------------------------------- acceptance


def test_wrong_step_with_right_answer_is_dropped_and_terse_right_trace_kept():
    wrong_middle = ("Step 1: 3 * 4 = 12 apples in all.\nStep 2: 12 - 2 = 9 apples are left.\n"
                    "Step 3: 9 + 1 = 10 after he finds one.\nThe answer is 10.")
    traces = [trace(RIGHT), trace(wrong_middle, sample_index=1), trace("The answer is 10.", sample_index=2),
              trace("3 * 4 - 2 = 10. The answer is 10.", sample_index=3)]
    decisions = judge_traces(traces, FilterConfig())
    assert [d.reason for d in decisions] == [None, "wrong_arithmetic", None, None]
    dropped = decisions[1]
    assert dropped.details["first_wrong_step"] == 2
    assert dropped.details["claimed"] == "9" and dropped.details["computed"] == "10"
    assert dropped.trace.metadata["filter_reason"] == "wrong_arithmetic"
    assert dropped.trace.metadata["filter_details"]["first_wrong_step"] == 2
    kept, report = filter_traces(traces, FilterConfig())
    assert [t.sample_index for t in kept] == [0, 2, 3]
    assert report.dropped_by_reason == {"wrong_arithmetic": 1}
    assert_adds_up(report, 4)


def test_no_check_arithmetic_keeps_the_right_answer_with_wrong_step():
    wrong = "Step 1: 3 * 4 = 13 apples.\nStep 2: 13 - 3 = 10.\nThe answer is 10."
    assert reasons([trace(wrong)]) == ["wrong_arithmetic"]
    assert reasons([trace(wrong)], check_arithmetic=False) == [None]


def test_every_reason_in_one_run_first_failure_wins_and_counts_add_up():
    code_ok = "```python\nprint(3 * 4 - 2)\n```\nThe answer is 10."
    traces = [
        trace(RIGHT, strategy="cot"),
        trace("I am not sure.", strategy="cot"),                                   # no_answer
        trace(RIGHT.replace("10", "11"), strategy="cot"),                          # wrong_answer (and bad step)
        trace("Step 1: 3 * 4 = 12.\nThe answer is 12.", answer="", problem_id="p2", strategy="sc"),
        trace("Step 1: Four apples in each of 3 boxes, 4 * 3 = 12.\nThe answer is 12.", answer="",
              problem_id="p2", strategy="sc", sample_index=1),
        trace("Step 1: 3 + 4 = 7.\nThe answer is 7.", answer="", problem_id="p2", strategy="sc",
              sample_index=2),                                                      # disagrees_with_majority
        trace("The answer is 10.", strategy="terse"),                              # too_few_steps
        trace("\n".join(f"Step {k}: 10 + 0 = 10." for k in range(1, 9)) + "\nThe answer is 10."),  # too_many
        trace(RIGHT + " " + "Indeed." * 200),                                       # too_long
        trace("Step 1: 3 * 4 = 13.\nStep 2: 13 - 3 = 10.\nThe answer is 10."),     # wrong_arithmetic
        trace("Step 1: He buys 37 more boxes, 3 * 4 = 12.\nStep 2: 12 - 2 = 10.\nThe answer is 10."),  # ungrounded
        trace(code_ok.replace("3 * 4 - 2", "1 / 0"), strategy="pot"),              # code_failed
        trace(code_ok.replace("3 * 4 - 2", "3 * 4 + 2"), strategy="pot"),          # code_mismatch
        trace(code_ok, strategy="pot"),
        trace(RIGHT.replace("Step 1:", "step 1 :"), strategy="cot", sample_index=7),  # duplicate of the first
    ]
    config = dict(min_steps=1, max_steps=6, max_chars=600, check_grounded=True, dedup=True, sandbox=True,
                  sandbox_limits=SandboxLimits(wall_seconds=10))
    expected = [None, "no_answer", "wrong_answer", None, None, "disagrees_with_majority", "too_few_steps",
                "too_many_steps", "too_long", "wrong_arithmetic", "ungrounded_number", "code_failed",
                "code_mismatch", None, "duplicate"]
    decisions = judge_traces(traces, FilterConfig(**config))
    assert [d.reason for d in decisions] == expected
    assert decisions[-1].details["duplicate_of"] == 0
    assert decisions[11].details["failure"].startswith("exit code 1") and "ZeroDivisionError" in decisions[11].details["stderr_tail"]
    kept, report = filter_traces(traces, FilterConfig(**config))
    assert_adds_up(report, len(traces))
    assert report.kept == 4 == len(kept)
    assert list(report.dropped_by_reason) == [r for r in REASONS if r in set(expected)]  # pipeline order
    assert report.by_strategy["pot"].model_dump() == {"input": 3, "kept": 1,
                                                      "dropped_by_reason": {"code_failed": 1, "code_mismatch": 1}}
    assert report.sandbox_isolation and any("namespace" in m or "rlimits" in m for m in report.sandbox_isolation)
    json.dumps(report.to_json_dict())  # the report is plain JSON


# ---------------------------------------------------------------------------------- answers


def test_stored_predicted_answer_must_be_well_formed_for_its_type():
    assert reasons([trace(RIGHT, predicted_answer="twelve")]) == ["no_answer"]
    assert reasons([trace(RIGHT, predicted_answer="$10.00")]) == [None]
    choice = dict(question="Which is a fruit? A) car B) apple", answer="B", choices=["car", "apple"])
    assert reasons([Trace(reasoning="The answer is (B).", **choice)]) == [None]
    assert reasons([Trace(reasoning="The answer is (B).", predicted_answer="maybe both", **choice)]) == ["no_answer"]
    assert reasons([Trace(reasoning="The answer is (A).", **choice)]) == ["wrong_answer"]


def test_correctness_uses_the_shared_checker_so_equal_forms_agree():
    assert reasons([trace("So she pays 10.50 dollars.\nThe answer is $10.50", answer="21/2")]) == [None]
    assert reasons([trace("That is half.\nThe answer is 50%", answer="0.5")]) == [None]
    assert reasons([trace("That is half.\nThe answer is 50", answer="0.5")]) == ["wrong_answer"]


def test_no_require_correct_keeps_wrong_answers():
    assert reasons([trace("The answer is 11.")], require_correct=False) == [None]


def test_majority_is_voted_per_problem_with_equal_answers_grouped():
    p = dict(answer="", problem_id="p1")
    traces = [trace("The answer is 0.5", **p), trace("The answer is 1/2", sample_index=1, **p),
              trace("The answer is 3", sample_index=2, **p),
              trace("The answer is 3", answer="", problem_id="p2")]  # another problem: its own vote
    decisions = judge_traces(traces, FilterConfig())
    assert [d.reason for d in decisions] == [None, None, "disagrees_with_majority", None]
    assert decisions[2].details["majority"] == ["0.5"]
    assert [round(d.vote_share, 3) for d in decisions] == [0.667, 0.667, 0.333, 1.0]


def test_majority_tie_keeps_every_tied_answer():
    p = dict(answer="", problem_id="p1")
    assert reasons([trace("The answer is 4", **p), trace("The answer is 5", sample_index=1, **p)]) == [None, None]


def test_recorded_vote_metadata_wins_over_recounting():
    p = dict(answer="", problem_id="p1")
    traces = [trace("The answer is 4", metadata={"agrees_with_majority": False, "vote_share": 0.25}, **p),
              trace("The answer is 4", sample_index=1, metadata={"majority_answer": "5"}, **p),
              trace("The answer is 5", sample_index=2, metadata={"majority_answer": "5.0"}, **p)]
    decisions = judge_traces(traces, FilterConfig())
    assert [d.reason for d in decisions] == ["disagrees_with_majority", "disagrees_with_majority", None]
    assert decisions[0].vote_share == 0.25


def test_majority_flag_judges_against_the_vote_even_with_gold():
    p = dict(answer="10", problem_id="p1")  # the gold says 10, the samples mostly say 12
    traces = [trace("The answer is 12", **p), trace("The answer is 12", sample_index=1, **p),
              trace("The answer is 10", sample_index=2, **p)]
    assert reasons(traces) == ["wrong_answer", "wrong_answer", None]
    assert reasons(traces, majority=True) == [None, None, "disagrees_with_majority"]


# ---------------------------------------------------------------------------------- lengths


def test_step_bounds_use_stored_steps_else_the_step_parser():
    three = "Step 1: 3 * 4 = 12.\nStep 2: 12 - 2 = 10.\nStep 3: So 10 are left.\nThe answer is 10."
    assert reasons([trace(three)], min_steps=3, max_steps=3) == [None]
    assert reasons([trace(three)], min_steps=4) == ["too_few_steps"]
    assert reasons([trace(three)], max_steps=2) == ["too_many_steps"]
    assert reasons([trace(three, steps=["3 * 4 - 2 = 10"])], min_steps=2) == ["too_few_steps"]


def test_max_chars_counts_the_reasoning():
    assert reasons([trace(RIGHT)], max_chars=len(RIGHT)) == [None]
    assert reasons([trace(RIGHT)], max_chars=len(RIGHT) - 1) == ["too_long"]


def test_config_refuses_impossible_settings():
    with pytest.raises(InputError, match="min_steps"):
        FilterConfig(min_steps=5, max_steps=2)
    with pytest.raises(InputError, match="dedup_threshold"):
        FilterConfig(dedup_threshold=0.0)
    with pytest.raises(InputError, match="wall_seconds"):
        SandboxLimits(wall_seconds=0)


# ---------------------------------------------------------------------------------- dedup


def test_near_duplicates_of_one_problem_collapse_to_the_first_kept():
    reworded = "Step 1: 3 * 4 = 12 apples in total.\nStep 2: 12 - 2 = 10 apples are left.\nThe answer is 10."
    different = "First, 4 + 4 + 4 = 12 apples. He eats 2, so 12 - 2 = 10 remain.\nThe answer is 10."
    traces = [trace("Step 1: 3 * 4 = 13.\nThe answer is 10."),  # dropped first: never a dedup reference
              trace(RIGHT, sample_index=1), trace(RIGHT.upper().replace("STEP", "step"), sample_index=2),
              trace(reworded, sample_index=3), trace(different, sample_index=4),
              trace(RIGHT, problem_id="other", sample_index=5)]
    decisions = judge_traces(traces, FilterConfig(dedup=True, dedup_threshold=0.9))
    assert [d.reason for d in decisions] == ["wrong_arithmetic", None, "duplicate", None, None, None]
    assert decisions[2].details == {"duplicate_of": 1, "similarity": 1.0}
    loose = judge_traces(traces, FilterConfig(dedup=True, dedup_threshold=0.5))
    assert [d.reason for d in loose] == ["wrong_arithmetic", None, "duplicate", "duplicate", None, None]


# ---------------------------------------------------------------------------------- symbolic


def test_symbolic_check_reads_the_math_answer_from_the_reasoning_itself():
    m = dict(question="Simplify 2x + 2.", answer="2(x+1)", answer_type="math")
    assert reasons([Trace(reasoning="Factor out 2: \\boxed{2x+2}", **m)], symbolic=True) == [None]
    # The stored answer says right, the text ends on something else: only the symbolic check sees it.
    lying = Trace(reasoning="So the result is \\boxed{2x+1}", predicted_answer="2(x+1)", **m)
    assert reasons([lying]) == [None]
    assert reasons([lying], symbolic=True) == ["symbolic_mismatch"]
    half = dict(question="What is 1/2 as a decimal?", answer="\\frac{1}{2}", answer_type="math")
    assert reasons([Trace(reasoning="\\boxed{0.5}", **half)], symbolic=True) == [None]
    assert reasons([trace(RIGHT)], symbolic=True) == [None]  # numeric traces are not this filter's


# ---------------------------------------------------------------------------------- grounding


def test_ungrounded_numbers_are_flagged_on_kept_traces_and_dropped_on_request():
    invented = "Step 1: He also has 37 pears, and 3 * 4 = 12 apples.\nStep 2: 12 - 2 = 10.\nThe answer is 10."
    d = judge_traces([trace(invented)], FilterConfig())[0]
    assert d.kept and d.flags["ungrounded_number"]["numbers"] == ["37"]
    assert d.trace.metadata["filter_flags"]["ungrounded_number"]["first_step"] == 1
    _, report = filter_traces([trace(invented), trace(RIGHT)], FilterConfig())
    assert report.flagged_by_reason == {"ungrounded_number": 1} and report.kept == 2
    assert reasons([trace(invented)], check_grounded=True) == ["ungrounded_number"]


@pytest.mark.parametrize("reasoning", [
    RIGHT,
    "Step 1: Three boxes of four is 12 apples.\nStep 2: He has 10 left after eating 2.\nThe answer is 10.",
    "Step 1: Half of 4 is 2 and 3 hours is 180 minutes, so 3 * 4 = 12.\nStep 2: 12 - 2 = 10.\nThe answer is 10.",
    "Step 1: 3 boxes hold 12 apples. In step 2 we subtract.\nStep 2: He has 10.\nThe answer is 10.",
    "1. There are 3 * 4 = 12 apples.\n2. He eats 2, leaving 10 (that is 100% of what is left).\nThe answer is 10.",
])
def test_traceable_numbers_are_grounded(reasoning):
    assert judge_traces([trace(reasoning)], FilterConfig(check_grounded=True))[0].reason is None


def test_question_number_words_and_percentages_ground_digits():
    q = "A shop sells twenty-five pens at 20% off and a quarter of them are red. How many are red?"
    ok = "Step 1: 25 pens, a quarter is 25 / 4 = 6.25.\nStep 2: The discount 0.2 does not matter.\nThe answer is 6.25"
    assert judge_traces([trace(ok, answer="6.25", question=q)], FilterConfig(check_grounded=True))[0].reason is None


# ---------------------------------------------------------------------------------- real data


def test_gsm8k_gold_solutions_pass_and_a_corrupted_middle_step_is_caught(shared_data):
    annotation = re.compile(r"<<([^=<>]+)=(\d+)>>(\d+)")
    gsm8k_train = shared_data / "gsm8k" / "train.jsonl"
    rows = [json.loads(line) for line in gsm8k_train.read_text(encoding="utf-8").splitlines()[:300]]
    gold, corrupted, where = [], [], []
    for row in rows:
        solution, answer = row["answer"].split("####")
        lines = solution.strip().split("\n")
        if len(lines) < 3 or not annotation.search(lines[1]):
            continue
        text = "\n".join(lines) + f"\nThe answer is {answer.strip()}"
        gold.append(trace(text, answer=answer.strip(), question=row["question"]))
        m = annotation.search(lines[1])
        wrong = str(int(m.group(2)) + 1)  # the middle step claims one more than it computes
        lines[1] = lines[1][:m.start()] + f"<<{m.group(1)}={wrong}>>{wrong}" + lines[1][m.end():]
        corrupted.append(trace("\n".join(lines) + f"\nThe answer is {answer.strip()}", answer=answer.strip(),
                               question=row["question"]))
        where.append(2)
    assert len(gold) >= 100
    gold_reasons = Counter(reasons(gold))
    assert gold_reasons[None] >= 0.97 * len(gold), gold_reasons
    decisions = judge_traces(corrupted, FilterConfig())
    caught = [d for d in decisions if d.reason == "wrong_arithmetic"]
    assert len(caught) >= 0.95 * len(corrupted)
    assert sum(d.details["first_wrong_step"] <= 2 for d in caught) >= 0.95 * len(caught)
