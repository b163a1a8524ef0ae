"""Answer typing, extraction and judging on the formats real models write."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import pytest

from rdistill.answers import Verdict, check, extract_answer, infer_answer_type, judge, parse_number
from rdistill.errors import UnknownNameError

SRC = Path(__file__).resolve().parents[1] / "src"
CAPITALS = ["Paris", "London", "Rome", "Berlin"]


# ------------------------------------------------------------------------------------ parse_number

@pytest.mark.parametrize("text, expected", [
    ("18", Fraction(18)),
    ("1,234.50", Fraction("1234.5")),
    ("$12", Fraction(12)),
    ("\\$12.00", Fraction(12)),
    ("45%", Fraction(45)),
    ("12\\%", Fraction(12)),
    ("7 apples", Fraction(7)),
    ("12.0", Fraction(12)),
    ("-3", Fraction(-3)),
    ("−3", Fraction(-3)),
    ("-$5", Fraction(-5)),
    ("3/4", Fraction(3, 4)),
    ("\\frac{3}{4}", Fraction(3, 4)),
    ("\\dfrac{1}{2}", Fraction(1, 2)),
    ("2 1/2", Fraction(5, 2)),
    (".5", Fraction(1, 2)),
    ("1{,}000", Fraction(1000)),
    ("18 \\text{ dollars}", Fraction(18)),
    ("45°", Fraction(45)),
    ("1.5 million", Fraction(1_500_000)),
    ("2.5e3", Fraction(2500)),
    ("**42**.", Fraction(42)),
    ("60 km/h", Fraction(60)),
])
def test_parse_number_reads_plain_numbers(text, expected):
    assert parse_number(text) == expected


@pytest.mark.parametrize("text", [
    "", "apples", "x = 5", "5 + 3", "2 pi", "3 apples and 4 oranges", "1, 2", "1/0", "\\sqrt{2}", "3i",
    "approximately 5", "9" * 300,
])
def test_parse_number_rejects_non_numbers(text):
    assert parse_number(text) is None


# ------------------------------------------------------------------------------- infer_answer_type

@pytest.mark.parametrize("answer, choices, expected", [
    ("yes", None, "boolean"),
    ("False", None, "boolean"),
    ("B", None, "choice"),
    ("(C)", None, "choice"),
    ("H", CAPITALS + ["a", "b", "c", "d"], "choice"),
    ("Rome", CAPITALS, "choice"),
    ("18", None, "numeric"),
    ("1,000", None, "numeric"),
    ("$5", None, "numeric"),
    ("-2.5", None, "numeric"),
    ("3/4", None, "numeric"),
    ("45%", None, "numeric"),
    ("\\frac{1}{2}", None, "math"),
    ("2\\sqrt{3}", None, "math"),
    ("x^2 + 1", None, "math"),
    ("\\pi", None, "math"),
    ("2 pi", None, "math"),
    ("(1, 2)", None, "math"),
    ("[0, 1)", None, "math"),
    ("x = 5", None, "math"),
    ("\\{1, 2\\}", None, "math"),
    ("\\left(1, 2\\right)", None, "math"),
    ("2xy + 1", None, "math"),
    ("Paris", None, "text"),
    ("H", None, "text"),
    ("photosynthesis", None, "text"),
    ("New York City", None, "text"),
])
def test_infer_answer_type(answer, choices, expected):
    assert infer_answer_type(answer, choices) == expected


# ---------------------------------------------------------------------------------- extract_answer

GSM8K_STYLE = ("Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4, so 16 - 3 - 4 = 9 eggs.\n"
               "She sells them at $2 each: 9 * 2 = 18.\n#### 18")


@pytest.mark.parametrize("text, answer_type, expected", [
    # numeric
    (GSM8K_STYLE, "numeric", "18"),
    ("The answer is $1,234.", "numeric", "1234"),
    ("**Answer**: 42", "numeric", "42"),
    ("**Answer:** 42", "numeric", "42"),
    ("So the final answer is **42**.", "numeric", "42"),
    ("Final answer: $\\boxed{1{,}000}$", "numeric", "1000"),
    ("The final answer is $\\boxed{18 \\text{ dollars}}$.", "numeric", "18"),
    ("The answer is 18 eggs.", "numeric", "18"),
    ("So she makes $18.00 every day.", "numeric", "18"),
    ("The answer is $18. Then she buys more.", "numeric", "18"),
    ("Thus the answer is -3.5.", "numeric", "-3.5"),
    ("The answer is 45%.", "numeric", "45%"),
    ("The answer is 5. Wait, that is wrong. The answer is 6.", "numeric", "6"),
    ("The answer is 5.\nStep 3: 5 + 7 = 12", "numeric", "5"),
    ("Step 1: 2 + 3 = 5\nStep 2: 5 + 7 = 12", "numeric", "12"),
    ("The answer is 5 + 7 = 12.", "numeric", "12"),
    ("The answer is 18, since 16 - 3 - 4 = 9 eggs sold at $2 each.", "numeric", "18"),
    ("The answer is x = 5", "numeric", "5"),
    ("The answer isn't 5; we get 6 apples", "numeric", "6"),
    ("The answer is not 5. Recomputing: 2 * 3 = 6", "numeric", "6"),
    ("The answer is correct, so we have 7 left.\nAnswer: 7", "numeric", "7"),
    ("Let me verify the answer is correct. Earlier: The answer is 9", "numeric", "9"),
    ("\\boxed{12} is what I first thought, but the answer is 13", "numeric", "13"),
    ("<think>The answer is 3.</think>\nThe answer is 4.", "numeric", "4"),
    ("<answer>\n12\n</answer>", "numeric", "12"),
    ("The answer is 0.50", "numeric", "0.5"),
    ("The answer is 1.5 million", "numeric", "1500000"),
    ("#### Step 1: Compute\n5 + 7 = 12\n#### Step 2: double it\n12 * 2 = 24", "numeric", "24"),
    ("The answer is $\\dfrac{7}{3}$", "numeric", "7/3"),
    ("No numbers here at all.", "numeric", None),
    ("", "numeric", None),
    # math
    ("So the total is $\\boxed{\\frac{1}{2}}$.", "math", "\\frac{1}{2}"),
    ("Hence $\\boxed{\\left(\\frac{a}{b^{2}}, 3\\right)}$", "math", "\\left(\\frac{a}{b^{2}}, 3\\right)"),
    ("## Final Answer\n\n$$\n\\frac{\\sqrt{3}}{2}\n$$", "math", "\\frac{\\sqrt{3}}{2}"),
    ("The answer is $\\frac{\\pi}{2}$ radians.", "math", "\\frac{\\pi}{2}"),
    ("The answer is \\(x^2 + 1\\).", "math", "x^2 + 1"),
    ("We simplify.\n\nSo the area is $12\\pi$.", "math", "12\\pi"),
    ("The answer is \\boxed{5}. Double checking: \\boxed{6}", "math", "6"),
    ("The set is $\\boxed{\\{1, 2\\}}$.", "math", "\\{1, 2\\}"),
    # choice
    ("The answer is (B).", "choice", "B"),
    ("Looking at each option, C) fits best.\nThe correct option is D", "choice", "D"),
    ("Answer: **c**", "choice", "C"),
    ("Option (A) is wrong, (B) is wrong.\nSo the answer is Rome.", "choice", "C"),
    ("The answer is B) London", "choice", "B"),
    ("$\\boxed{\\text{A}}$", "choice", "A"),
    ("I pick option C.", "choice", "C"),
    ("A train leaves at noon and ... it takes long.", "choice", None),
    # boolean
    ("The answer is yes.", "boolean", "yes"),
    ("So, no.", "boolean", "no"),
    ("Answer: **False**", "boolean", "no"),
    ("The statement is not true.\nAnswer: not true", "boolean", "no"),
    ("The answer is: No, because 7 is prime.", "boolean", "no"),
    ("\\boxed{\\text{Yes}}", "boolean", "yes"),
    # text
    ("The answer is: Paris.", "text", "Paris"),
    ("**Answer:** photosynthesis", "text", "photosynthesis"),
    ("I think about it.\nParis", "text", "Paris"),
])
def test_extract_answer(text, answer_type, expected):
    choices = CAPITALS if answer_type == "choice" else None
    assert extract_answer(text, answer_type, choices) == expected


def test_extract_without_type_returns_the_cleaned_span():
    assert extract_answer("Thus the answer is **Rome**.") == "Rome"
    assert extract_answer("so 3 + 4 = 7") == "7"


# ------------------------------------------------------------------------------------------ judge

@pytest.mark.parametrize("predicted, gold, answer_type, expected", [
    # numeric
    ("18", "18", "numeric", True),
    ("18.00", "$18", "numeric", True),
    ("1000", "1,000", "numeric", True),
    ("$5", "5", "numeric", True),
    ("0.5", "1/2", "numeric", True),
    ("\\frac{1}{2}", "0.5", "numeric", True),
    ("\\dfrac{3}{4}", "0.75", None, True),
    ("45%", "0.45", "numeric", True),
    ("45", "45%", "numeric", True),
    ("45", "0.45", "numeric", False),
    ("12.5", "12", "numeric", False),
    ("12", "12.5", None, False),
    ("-3", "3", "numeric", False),
    ("0.333", "1/3", "numeric", False),
    ("none of them", "7", "numeric", False),
    ("\\sqrt{4}", "2", "numeric", True),
    (None, "18", "numeric", False),
    ("", "18", None, False),
    # math
    ("\\frac{1}{2}", "\\frac{1}{2}", "math", True),
    ("0.5", "\\frac{1}{2}", None, True),
    ("\\sqrt{8}", "2\\sqrt{2}", None, True),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", "math", True),
    ("(x+1)^2", "x^2+2x+1", "math", True),
    ("\\boxed{\\dfrac{\\pi}{2}}", "\\frac{\\pi}{2}", "math", True),
    ("2pi", "2\\pi", "math", True),
    ("[0, 1)", "[0,1)", "math", True),
    ("(0, 1)", "[0,1)", "math", False),
    ("x = 5", "5", "math", True),
    ("45^\\circ", "45", "math", True),
    ("\\frac{1}{3}", "\\frac{1}{2}", "math", False),
    ("\\sqrt{3}", "\\sqrt{2}", "math", False),
    ("9^{9^{9}}", "1", "math", False),
    # choice
    ("B", "B", "choice", True),
    ("b", "(B)", "choice", True),
    ("Rome", "C", "choice", True),
    ("C", "Rome", "choice", True),
    ("A", "B", "choice", False),
    ("London", "Rome", "choice", False),
    # boolean
    ("yes", "Yes", "boolean", True),
    ("no", "False", "boolean", True),
    ("yes", "True", None, True),
    ("yes", "no", "boolean", False),
    ("maybe", "no", "boolean", False),
    # text
    ("paris", "Paris", "text", True),
    ("  New   York. ", "new york", None, True),
    ("U.S.A.", "USA", "text", True),
    ("Lyon", "Paris", "text", False),
    ("Paris France", "Paris", "text", False),
])
def test_judge(predicted, gold, answer_type, expected):
    choices = CAPITALS if answer_type == "choice" else None
    assert judge(predicted, gold, answer_type, choices) is expected


def test_judge_accepts_non_string_gold():
    assert judge("yes", True, "boolean")  # type: ignore[arg-type]
    assert judge("18", 18.0)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ check

@pytest.mark.parametrize("text, gold, choices, expected", [
    (GSM8K_STYLE, "18", None, Verdict("18", True)),
    (GSM8K_STYLE, "19", None, Verdict("18", False)),
    ("The answer is $1,234.", "1234", None, Verdict("1234", True)),
    ("Step 3: 5 + 7 = 12.\nThe answer is 12.5", "12", None, Verdict("12.5", False)),
    ("The final answer is $\\boxed{\\dfrac{1}{2}}$.", "0.5", None, Verdict("0.5", True)),
    ("Therefore $x = \\boxed{2\\sqrt{2}}$", "\\sqrt{8}", None, Verdict("2\\sqrt{2}", True)),
    ("The answer is (C).", "C", CAPITALS, Verdict("C", True)),
    ("The answer is London.", "C", CAPITALS, Verdict("B", False)),
    ("Is 7 prime? Yes, it has no divisors.\nAnswer: yes", "yes", None, Verdict("yes", True)),
    ("The capital is... The answer is Paris.", "paris", None, Verdict("Paris", True)),
    ("I could not solve it.", "42", None, Verdict(None, False)),
])
def test_check(text, gold, choices, expected):
    assert check(text, gold, choices=choices) == expected


# --------------------------------------------------------------------------------- robustness

def test_unknown_answer_type_is_rejected_with_suggestion():
    with pytest.raises(UnknownNameError, match="numeric"):
        judge("1", "1", "numerc")  # type: ignore[arg-type]
    with pytest.raises(UnknownNameError):
        extract_answer("The answer is 1", "number")  # type: ignore[arg-type]


def test_symbolic_judging_works_in_worker_threads():
    # math-verify's signal-based timeout raises outside the main thread unless it is disabled.
    cases = [("\\sqrt{8}", "2\\sqrt{2}", True), ("(x+1)^2", "x^2+2x+1", True),
             ("\\frac{\\pi}{3}", "\\frac{\\pi}{2}", False), ("x = 5", "5", True)] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda c: judge(c[0], c[1], "math"), cases))
    assert results == [expected for _, _, expected in cases]


def test_runaway_power_towers_are_not_evaluated_in_threads():
    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(judge("9^{9^{9^{9}}}", "1", "math")))
    started = time.monotonic()
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive() and result == [False]
    assert time.monotonic() - started < 10


def test_extraction_is_fast_on_long_reasoning():
    text = ("We add 3 and 4 to get 7. " * 5000) + "\nThe answer is 7."
    started = time.monotonic()
    assert extract_answer(text, "numeric") == "7"
    assert time.monotonic() - started < 2


def test_import_does_not_load_math_verify_or_sympy():
    code = ("import sys, rdistill.answers; "
            "print(sorted(m for m in ('math_verify', 'sympy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC), "PATH": ""})
    assert out.stdout.strip() == "[]"


def test_math_verify_timeout_is_disabled_only_off_the_main_thread():
    from rdistill.answers import _math_verify_timeout

    in_worker: list[int | None] = []
    worker = threading.Thread(target=lambda: in_worker.append(_math_verify_timeout()))
    worker.start()
    worker.join()
    assert in_worker == [None]
    if sys.platform != "win32":
        assert _math_verify_timeout() == 10
