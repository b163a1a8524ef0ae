"""Built-in synthetic tasks: exact golds, gold solutions that re-compute, reproducibility, disjoint splits.

Golds are re-derived here from the question text with independent code, not with the generators' helpers.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import os
import re
import string
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

import rdistill
from rdistill.data.synth import TASKS, generate, parse_steps_range
from rdistill.data.synth.arithmetic_scenarios import SCENARIOS
from rdistill.errors import UnknownNameError


def as_json(problems) -> str:
    return json.dumps([p.to_json_dict() for p in problems], ensure_ascii=False)


# --------------------------------------------------------------------------------------------- shared
def steps_for(task: str, lo: int, hi: int) -> tuple[int, int]:
    """The range asked of every task, within what `task` has: facts goes to 3 steps (and has few of 1 step)."""
    return (2, 3) if task == "facts" else (lo, hi)


@pytest.mark.parametrize("task", list(TASKS))
def test_same_arguments_give_identical_json(task):
    steps = steps_for(task, 1, 4)
    first = generate(task, 300, seed=3, split="test", steps=steps)
    second = generate(task, 300, seed=3, split="test", steps=steps)
    assert as_json(first) == as_json(second)
    assert as_json(first) != as_json(generate(task, 300, seed=4, split="test", steps=steps))


def test_output_does_not_depend_on_string_hash_randomisation():
    script = ("import hashlib, json; from rdistill.data.synth import TASKS, generate; "
              "print(hashlib.sha256(json.dumps([[p.to_json_dict() for p in generate(t, 200, seed=1, "
              "steps=(2, 3) if t == 'facts' else (1, 4))] for t in TASKS]).encode()).hexdigest())")
    src = str(Path(rdistill.__file__).resolve().parents[1])
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed,
               "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    here = hashlib.sha256(json.dumps([[p.to_json_dict() for p in generate(t, 200, seed=1, steps=steps_for(t, 1, 4))]
                                      for t in TASKS]).encode()).hexdigest()
    assert digests == {here}


def normalised(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.mark.parametrize("task", list(TASKS))
def test_train_and_test_never_share_a_question(task):
    train = generate(task, 2000, seed=0, split="train", steps=steps_for(task, 2, 5))
    test = generate(task, 2000, seed=1, split="test", steps=steps_for(task, 2, 5))
    train_questions = {normalised(p.question) for p in train}
    test_questions = {normalised(p.question) for p in test}
    assert len(train_questions) == len(train) and len(test_questions) == len(test)  # deduplicated
    assert not train_questions & test_questions
    assert not {p.id for p in train} & {p.id for p in test}
    assert {p.split for p in train} == {"train"} and {p.split for p in test} == {"test"}


def test_validation_split_is_a_third_disjoint_bucket():
    sets = {split: {normalised(p.question) for p in generate("arithmetic", 500, split=split)}
            for split in ("train", "validation", "test")}
    assert not sets["train"] & sets["validation"] and not sets["test"] & sets["validation"]


@pytest.mark.parametrize("task", list(TASKS))
def test_steps_range_is_respected_and_balanced(task):
    lo, hi = steps_for(task, 2, 5)
    problems = generate(task, 400, seed=2, steps=(lo, hi))
    counts = collections.Counter(p.difficulty for p in problems)
    assert set(counts) == set(range(lo, hi + 1))
    assert max(counts.values()) - min(counts.values()) <= 1
    for p in problems:
        step_lines = [line for line in p.solution.splitlines() if line.startswith("Step ")]
        assert len(step_lines) == p.difficulty == p.metadata["steps"]
        assert p.solution.splitlines()[-1] == f"The answer is {p.answer}."


@pytest.mark.parametrize("task,domain,answer_type", [
    ("arithmetic", "math", "numeric"), ("last_letters", "symbolic", "text"),
    ("coin_flip", "logic", "boolean"), ("date_arith", "logic", "text")])
def test_record_fields(task, domain, answer_type):
    problems = generate(task, 50, seed=0)
    assert len(problems) == 50
    assert len({p.id for p in problems}) == 50
    for p in problems:
        assert p.source == f"synth:{task}" and p.domain == domain and p.answer_type == answer_type
        assert p.id.startswith(f"{task}-") and p.metadata["task"] == task


def test_zero_problems():
    assert generate("coin_flip", 0) == []


# --------------------------------------------------------------------------------------------- errors
def test_unknown_task_suggests_the_closest_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'arithmetic'"):
        generate("arithmetc", 5)


def test_unknown_option_suggests_the_closest_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'allow_negative'"):
        generate("arithmetic", 5, allow_negatives=True)
    with pytest.raises(ValueError, match="allow_fractions must be bool"):
        generate("arithmetic", 5, allow_fractions="yes")


def test_bad_split_or_steps_or_count():
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        generate("arithmetic", 5, split="dev")
    for steps in [(0, 3), (3, 2), (1, 9)]:
        with pytest.raises(ValueError, match="steps range"):
            generate("arithmetic", 5, steps=steps)
    with pytest.raises(ValueError, match="<= 8"):
        generate("date_arith", 5, steps=(1, 9))
    with pytest.raises(ValueError, match="n must be"):
        generate("arithmetic", -1)


def test_parse_steps_range():
    assert parse_steps_range("1-6") == (1, 6)
    assert parse_steps_range("3") == (3, 3)
    assert parse_steps_range(" 2 - 8 ") == (2, 8)
    assert parse_steps_range("1-12", task="coin_flip") == (1, 12)
    for bad in ("0-3", "5-2", "1-9", "x", "1-", "-3"):
        with pytest.raises(ValueError):
            parse_steps_range(bad)


def test_a_too_small_question_space_is_an_error_not_a_hang():
    with pytest.raises(ValueError, match="could only make"):
        generate("last_letters", 5000, steps=(1, 1))


def test_shortfall_of_small_step_counts_moves_to_longer_problems():
    problems = generate("last_letters", 3000, steps=(1, 2))
    counts = collections.Counter(p.difficulty for p in problems)
    assert sum(counts.values()) == 3000
    assert 0 < counts[1] < 1500 < counts[2]


# ----------------------------------------------------------------------------------------- arithmetic
STEP_LINE = re.compile(r"Step (\d+): (-?\d+(?:\.\d+)?) ([-+×÷]) (\d+) = (-?\d+(?:\.\d+)?)")
NUMBER_WORDS = {"twice": 2, "half": 2, "third": 3, "quarter": 4, "fifth": 5, "sixth": 6, "seventh": 7,
                "eighth": 8, "ninth": 9, "tenth": 10}
QUESTION_NUMBER = re.compile(r"\d+(?:\.\d+)?|\b(?:" + "|".join(NUMBER_WORDS) + r")\b")


def checked_arithmetic_steps(problem) -> list[tuple[Fraction, str, Fraction, Fraction]]:
    """Parse and re-compute every step; each must start from the previous result."""
    *step_lines, final = problem.solution.splitlines()
    steps, previous = [], None
    for index, line in enumerate(step_lines, start=1):
        match = STEP_LINE.fullmatch(line)
        assert match, line
        assert int(match.group(1)) == index
        a, op, b, c = Fraction(match.group(2)), match.group(3), Fraction(match.group(4)), Fraction(match.group(5))
        expected = {"+": a + b, "-": a - b, "×": a * b, "÷": a / b if b else None}[op]
        assert expected == c, line
        assert previous is None or a == previous, f"step {index} does not use the previous result"
        steps.append((a, op, b, c))
        previous = c
    assert final == f"The answer is {problem.answer}."
    assert Fraction(problem.answer) == previous
    return steps


def question_numbers(question: str) -> list[Fraction]:
    return sorted(Fraction(NUMBER_WORDS.get(tok, tok)) for tok in QUESTION_NUMBER.findall(question))


def test_arithmetic_solutions_recompute_and_use_every_number_of_the_question():
    problems = generate("arithmetic", 1500, seed=5, steps=(1, 8))
    for p in problems:
        steps = checked_arithmetic_steps(p)
        assert len(steps) == p.difficulty
        stated = [steps[0][0]] + [b for _, _, b, _ in steps]
        assert question_numbers(p.question) == sorted(stated), p.question


def test_arithmetic_stays_whole_positive_and_bounded_by_default():
    for p in generate("arithmetic", 2000, seed=6, steps=(1, 8)):
        for a, _, b, c in checked_arithmetic_steps(p):
            assert c.denominator == 1 and 0 < c <= 10_000, p.solution


def test_arithmetic_max_value_option_caps_every_value():
    for p in generate("arithmetic", 500, seed=6, steps=(4, 8), max_value=500):
        assert all(abs(c) <= 500 for *_, c in checked_arithmetic_steps(p))


def test_arithmetic_uses_all_operations_and_many_templates():
    problems = generate("arithmetic", 500, seed=7)
    assert len({p.metadata["template"] for p in problems}) >= 15
    ops = collections.Counter(op for p in problems for op in p.metadata["operations"])
    assert set(ops) == {"+", "-", "×", "÷"} and min(ops.values()) >= 50
    # Wording varies within a step count: not one template per count.
    for count in (1, 4):
        assert len({p.metadata["template"] for p in problems if p.difficulty == count}) >= 12


def test_arithmetic_negatives_and_decimals_only_when_asked():
    problems = generate("arithmetic", 1000, seed=8, steps=(3, 8), allow_negative=True, allow_fractions=True)
    values = [c for p in problems for *_, c in checked_arithmetic_steps(p)]
    assert any(v < 0 for v in values)
    assert any(v.denominator != 1 for v in values)
    assert all((v * 100).denominator == 1 for v in values)  # at most two decimals: exact written form
    for p in problems:
        assert question_numbers(p.question) == sorted(
            [checked_arithmetic_steps(p)[0][0]] + [b for _, _, b, _ in checked_arithmetic_steps(p)])


def test_arithmetic_is_fast_enough():
    started = time.perf_counter()
    assert len(generate("arithmetic", 10_000, seed=9)) == 10_000
    assert time.perf_counter() - started < 30


def test_scenario_templates_state_no_number_of_their_own():
    placeholder = re.compile(r"\{[A-Za-z]+\}")
    ordinal_or_fraction = re.compile(r"\b(second|third|fourth|fifth|half|twice|quarter|once|double|triple)\b")
    for scenario in SCENARIOS:
        templates = [*scenario.start, *scenario.add, *scenario.sub, *scenario.mul, *scenario.div,
                     *scenario.question]
        for template in templates:
            text = placeholder.sub("", template)
            assert not re.search(r"\d", text), (scenario.key, template)
            assert not ordinal_or_fraction.search(text), (scenario.key, template)
        fields = {f for t in templates for _, f, _, _ in string.Formatter().parse(t) if f}
        if fields & {"P", "p", "pos", "Pos", "obj"}:
            # A pronoun needs its person introduced in the very first sentence.
            assert all("{name}" in s or "{A}" in s for s in scenario.start), scenario.key


# ---------------------------------------------------------------------------------------- last_letters
def test_last_letters_gold():
    problems = generate("last_letters", 500, seed=1, steps=(1, 6))
    for p in problems:
        phrase = re.search(r'"([^"]+)"', p.question).group(1)
        words = phrase.split()
        assert len(words) == p.difficulty
        assert p.answer == "".join(word[-1] for word in words)
        for line, word in zip(p.solution.splitlines(), words):
            assert f'"{word}" ends in "{word[-1]}"' in line


def test_last_letters_wei_example_shape():
    p = generate("last_letters", 20, seed=0, steps=(4, 4))[0]
    assert re.fullmatch(r'[^"]*"[A-Z][a-z]+( [A-Z][a-z]+){3}"[^"]*', p.question)


# ------------------------------------------------------------------------------------------- coin_flip
def test_coin_flip_gold():
    problems = generate("coin_flip", 600, seed=1, steps=(1, 7))
    for p in problems:
        sentences = re.split(r"(?<=[.?])\s+", p.question)
        side = re.search(r"(heads|tails) up", sentences[0]).group(1)
        actions = sentences[1:-1]
        assert len(actions) == p.difficulty
        for action in actions:
            if not re.search(r"\bnot\b", action):
                side = "tails" if side == "heads" else "heads"
        asked = re.search(r"(heads|tails) up", sentences[-1]).group(1)
        assert p.answer == ("yes" if side == asked else "no"), p.question
    answers = collections.Counter(p.answer for p in problems)
    assert min(answers.values()) > 200  # both answers well represented: no constant-answer shortcut


# ------------------------------------------------------------------------------------------ date_arith
SHIFT = re.compile(r"(?:(forward|back) (?:by )?)?(\d+) (day|week|month|year)s?"
                   r"(?: (from today|ago|after that|before that))?")


def shift_date(day: dt.date, amount: int, unit: str) -> dt.date:
    if unit in ("day", "week"):
        return day + dt.timedelta(days=amount * (7 if unit == "week" else 1))
    months = amount * (12 if unit == "year" else 1)
    year, month0 = divmod(day.month - 1 + months, 12)
    return dt.date(day.year + year, month0 + 1, day.day)


def test_date_arith_gold():
    problems = generate("date_arith", 600, seed=1, steps=(1, 6))
    for p in problems:
        month, day, year = map(int, re.search(r"(\d\d)/(\d\d)/(\d{4})", p.question).groups())
        current = dt.date(year, month, day)
        shifts = SHIFT.findall(p.question)
        assert len(shifts) == p.difficulty, p.question
        for before, amount, unit, after in shifts:
            direction = before or after
            assert direction, p.question
            sign = 1 if direction in ("forward", "from today", "after that") else -1
            current = shift_date(current, sign * int(amount), unit)
        assert p.answer == current.strftime("%m/%d/%Y"), p.question
        assert re.fullmatch(r"\d\d/\d\d/\d{4}", p.answer)


# ------------------------------------------------------------------------------------------- facts
def test_facts_need_a_fact_the_question_never_states():
    from rdistill.answers import check
    from rdistill.data.synth.facts import FACTS

    values = {fact: value for fact, value, *_ in FACTS}
    problems = generate("facts", 300, seed=0, split="test", steps=(1, 3))
    assert len(problems) == 300 and {p.difficulty for p in problems} == {1, 2, 3}
    for p in problems:
        fact = p.metadata["fact"]
        value = values[fact]
        assert f" {value}" not in f" {p.question}".replace("?", " ").replace(".", " ").replace(",", " ") \
            or p.difficulty == 1 and str(value) not in p.question, p.question
        assert str(value) not in p.question.split()  # the number of the fact is never in the question
        expected = value if p.difficulty == 1 else value * p.metadata["count"]
        if p.difficulty == 3:  # plus the stated extra, the last number of the question
            expected += int([w for w in p.question.replace(",", " ").split() if w.isdigit()][-1])
        assert p.answer == str(expected) and check(p.solution, p.answer, p.answer_type).correct
        assert p.solution.splitlines()[0] == f"Step 1: {fact}: {value}"
