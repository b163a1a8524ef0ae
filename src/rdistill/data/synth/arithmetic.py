"""Multi-step arithmetic word problems (+ - × ÷), one operation per step, in many scenarios.

Each step combines the previous result with one new quantity stated in the question, and the question
states no other number. Values stay whole, positive and at most `max_value` unless the options allow
otherwise; negatives and decimals are only produced in scenarios where they make sense (a bank balance,
liters of fuel), so `allow_negative`/`allow_fractions` widen those scenarios and leave the others as they are.
Decimals are kept to at most two places, so every value has an exact, short written form.
"""

from __future__ import annotations

import functools
import math
import random
from fractions import Fraction
from typing import Any

from rdistill.data.synth._base import Candidate
from rdistill.data.synth.arithmetic_scenarios import MAX_STEPS, SCENARIOS, Scenario
from rdistill.data.synth.vocab import PEOPLE, pronoun_fields

DOMAIN = "math"
ANSWER_TYPE = "numeric"
OPTIONS: dict[str, Any] = {"allow_negative": False, "allow_fractions": False, "max_value": 10_000}

_FRACTION_WORDS = {2: "half", 3: "a third", 4: "a quarter", 5: "a fifth", 6: "a sixth", 7: "a seventh",
                   8: "an eighth", 9: "a ninth", 10: "a tenth"}
_DIVISORS = tuple(range(2, 11))  # each must have a word in _FRACTION_WORDS
_ATTEMPTS_PER_PLAN = 20

# Values are ints while whole (fast, and most are) and Fractions only when decimals are allowed.
Number = int | Fraction

__all__ = ["ANSWER_TYPE", "DOMAIN", "MAX_STEPS", "OPTIONS", "check_options", "format_number", "make_candidate"]


def check_options(options: dict[str, Any]) -> None:
    if options["max_value"] < 100:
        raise ValueError(f"max_value must be at least 100, got {options['max_value']}")


def format_number(value: Number) -> str:
    """Whole numbers as digits, others with up to two decimals: 19, -7, 12.5, 3.25."""
    if isinstance(value, int) or value.denominator == 1:
        return str(int(value))
    cents = value * 100
    if cents.denominator != 1:
        raise ValueError(f"{value} has more than two decimal places")
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents.numerator), 100)
    return f"{sign}{whole}.{rest:02d}".rstrip("0")


def make_candidate(rng: random.Random, steps: int, options: dict[str, Any]) -> Candidate | None:
    scenario = rng.choice(_scenarios_for(steps))
    signed = options["allow_negative"] and scenario.signed
    fractional = options["allow_fractions"] and scenario.fractional
    for _ in range(_ATTEMPTS_PER_PLAN):
        plan = _plan(rng, scenario, steps, signed, fractional, options["max_value"])
        if plan is not None:
            return _render(rng, scenario, *plan)
    return None


@functools.cache
def _scenarios_for(steps: int) -> tuple[Scenario, ...]:
    return tuple(s for s in SCENARIOS if s.max_steps >= steps)


def _plan(rng: random.Random, scenario: Scenario, steps: int, signed: bool, fractional: bool,
          max_value: int) -> tuple[int, list[tuple[str, int]], list[Number]] | None:
    """A start value and (operation, operand) per step, or None if this draw painted itself into a corner."""
    start = rng.randint(*scenario.start_range)
    value: Number = start
    ops: list[tuple[str, int]] = []
    values: list[Number] = []
    for _ in range(steps):
        # Trying the operations in a random order and taking the first that fits draws uniformly among
        # the operations that can follow the current value.
        order = list(scenario.operations)
        rng.shuffle(order)
        for op in order:
            operand = _draw_operand(rng, op, value, scenario, signed, fractional, max_value)
            if operand is not None:
                break
        else:
            return None
        value = _apply(op, value, operand)
        ops.append((op, operand))
        values.append(value)
    return start, ops, values


def _draw_operand(rng: random.Random, op: str, value: Number, scenario: Scenario, signed: bool,
                  fractional: bool, max_value: int) -> int | None:
    """An operand that keeps the next value valid (nonzero, within bounds), or None if there is none.

    Operands start at 2 so that no sentence says "1 more cookies"; amounts scale with the current value so
    that a step changes a large stock by a plausible amount.
    """
    scale = max(scenario.operand_max, int(abs(value)) // 2)
    if op == "+":
        hi = min(scale, math.floor(max_value - value))
        return _nonzero_draw(rng, 2, hi, lambda n: value + n)
    if op == "-":
        if signed:
            hi = min(scale, math.floor(value + max_value))
        else:
            # The result must stay positive; taking at most about three quarters of a stock also avoids
            # a run of near-empty stocks ("15 - 14 = 1") that no one would write a word problem about.
            hi = min(scale, math.ceil(value) - 1, max(2, math.floor(value * 3 / 4)))
        return _nonzero_draw(rng, 2, hi, lambda n: value - n)
    if op == "×":
        # Smaller factors for larger values: repeated growth should not turn a farm into a ranch.
        top = 10 if abs(value) <= 20 else 5 if abs(value) <= 100 else 3
        factors = [k for k in range(2, top + 1) if abs(value * k) <= max_value]
        return rng.choice(factors) if factors else None
    divisors = [k for k in _DIVISORS if _divides(value, k, fractional)]
    return rng.choice(divisors) if divisors else None


def _nonzero_draw(rng: random.Random, lo: int, hi: int, result) -> int | None:
    """Draw from [lo, hi], stepping off an operand whose result would be zero (nothing to multiply or split)."""
    if hi < lo:
        return None
    n = rng.randint(lo, hi)
    if result(n) == 0:
        n = n + 1 if n < hi else n - 1
        if n < lo or result(n) == 0:
            return None
    return n


def _divides(value: Number, k: int, fractional: bool) -> bool:
    if not fractional:
        return isinstance(value, int) and value % k == 0  # value is never zero
    return (Fraction(value) * 100 / k).denominator == 1


def _apply(op: str, value: Number, operand: int) -> Number:
    if op == "+":
        result = value + operand
    elif op == "-":
        result = value - operand
    elif op == "×":
        result = value * operand
    elif isinstance(value, int) and value % operand == 0:
        result = value // operand
    else:
        result = Fraction(value, operand)
    return result.numerator if isinstance(result, Fraction) and result.denominator == 1 else result


def _render(rng: random.Random, scenario: Scenario, start: int, ops: list[tuple[str, int]],
            values: list[Number]) -> Candidate:
    person = rng.choice(PEOPLE)
    fields: dict[str, str] = pronoun_fields(person)
    fields["items"] = rng.choice(scenario.items)
    entities = _entities(rng, scenario, len(ops) + 1, exclude=person.name)

    sentences = [_fill(rng.choice(scenario.start), fields, n=start, a=entities[0], b=entities[0])]
    last_used: dict[str, str] = {}
    for i, (op, operand) in enumerate(ops):
        # The same sentence twice in a row for the same operation reads like a template; vary it.
        pool = [t for t in scenario.phrases(op) if t != last_used.get(op)] or list(scenario.phrases(op))
        template = rng.choice(pool)
        last_used[op] = template
        sentences.append(_fill(template, fields, n=operand, a=entities[i], b=entities[i + 1]))
    sentences.append(_fill(rng.choice(scenario.question), fields, n=0, a=entities[-2], b=entities[-1]))

    lines, previous = [], start
    for (op, operand), value in zip(ops, values):
        lines.append(f"{format_number(previous)} {op} {operand} = {format_number(value)}")
        previous = value
    metadata = {
        "template": scenario.key,
        "style": scenario.style,
        "operations": [op for op, _ in ops],
        "operands": [operand for _, operand in ops],
        "start": start,
    }
    if fields["items"]:
        metadata["items"] = fields["items"]
    return Candidate(question=" ".join(sentences), answer=format_number(values[-1]), steps=lines,
                     metadata=metadata)


def _entities(rng: random.Random, scenario: Scenario, count: int, exclude: str) -> list[str]:
    """The series a chain problem walks along; stock problems have none (blanks keep indexing uniform)."""
    if scenario.style != "chain":
        return [""] * count
    if not scenario.entities:
        return rng.sample([p.name for p in PEOPLE if p.name != exclude], count)
    if scenario.consecutive:
        first = rng.randint(0, len(scenario.entities) - count)
        return list(scenario.entities[first:first + count])
    return rng.sample(scenario.entities, count)


def _fill(template: str, fields: dict[str, str], *, n: int, a: str, b: str) -> str:
    times = "twice" if n == 2 else f"{n} times"
    return template.format(**fields, n=n, k=n, times=times, fraction=_FRACTION_WORDS.get(n, ""), A=a, B=b)
