"""Grounding filter: every number in the reasoning must come from somewhere.

A number in a step is grounded when it
- appears in the question (or its choices), as digits, as a percentage (20% also reads as 0.2) or as
  number words ("three", "twenty-five", "two hundred"; "quarter" is 1/4 and 4, "triple" 3);
- appears in an earlier step, or earlier in the same step;
- is the result of an arithmetic claim of the same step, or written right after "=", "equals" or a GSM8K
  annotation's ">>" (whether it is right is the arithmetic filter's job);
- follows by one +, -, ×, ÷ from a number of the question or the steps and a grounded number or
  constant: "half of 10 is 5", "3 hours is 180 minutes" need no "=" to be traceable (two constants
  alone do not count: 30 + 7 would ground almost anything);
- or is one of `ALLOWED_CONSTANTS`, numbers a writer brings in without the question saying so:
    0, 1, 2 and 1/2 (nothing, one, both, twice, half), 10, 100, 1000 and 1/100 (decimal places,
    percent), 7 (days a week), 12 (dozen, months, inches a foot), 24 (hours a day), 30 (days a month),
    52 (weeks a year), 60 (minutes an hour, seconds a minute), 365 (days a year), 3600 (seconds an hour).
Not read as numbers: step and list numbering ("Step 3:", "step 2 gave"), ordinals ("3rd"), digits
after letters ("x2", "H2O", "m2"), codes and clock times with a leading zero ("0900"). Units may be
glued on ("15kg"); signs are ignored (-5 reads as 5).

"Grounded" means traceable, not right: a hallucinated quantity that happens to be the sum of two
question numbers passes. Ungrounded numbers are flagged on kept traces and drop them only when asked.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Iterable, Iterator

from rdistill.filter.facts import TraceFacts
from rdistill.filter.verdicts import PASS, FilterVerdict, drop, flag

ALLOWED_CONSTANTS: frozenset[Fraction] = frozenset(
    Fraction(v) for v in (0, 1, 2, "1/2", 10, 100, 1000, "1/100", 7, 12, 24, 30, 52, 60, 365, 3600))

# Units may be glued on ("15kg", "1hr"); ordinals ("3rd") and codes with a leading zero ("0900") are no
# quantities, and digits after a letter ("x2", "m2") are part of a name.
_NUMBER = re.compile(
    r"(?<![\w.])(?!0\d)(?:(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?|(?P<bare>\.\d+))"
    r"(?![\d_]|\.\d|(?:st|nd|rd|th)\b)(?P<pct>\s*(?:%|percent\b|per\s*cent\b))?", re.IGNORECASE)
_STEP_WORD_BEFORE = re.compile(r"(?i)\b(?:step|steps|part|case)\s*$")
# A number right after "=" (or "equals", or a GSM8K annotation's ">>") is what the step worked out; the
# arithmetic filter judges it, even where the step checker could not parse the expression.
_RESULT_MARK_BEFORE = re.compile(r"(?i)(?:=|≈|>>|\bequals?)\s*[$€£]?\s*$")

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())
         if w != "_"}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6}
_SPECIAL = {"half": (Fraction(1, 2),), "twice": (2,), "double": (2,), "triple": (3,), "thrice": (3,),
            "quarter": (Fraction(1, 4), 4), "dozen": (12,), "pair": (2,)}
_WORD = "|".join([*_UNITS, *_TENS, *_SCALES])
_NUMBER_WORDS = re.compile(rf"(?i)\b(?:{_WORD})(?:(?:[\s-]+|\s+and\s+)(?:{_WORD}))*\b")
_SPECIAL_WORDS = re.compile(r"(?i)\b(%s)s?\b" % "|".join(_SPECIAL))


def numbers_in(text: str) -> Iterator[tuple[str, tuple[Fraction, ...], bool]]:
    """(the number as written, the values it may stand for, whether it is stated as a result) for each
    number written in digits."""
    for m in _NUMBER.finditer(text):
        before = text[max(0, m.start() - 12):m.start()]
        if _STEP_WORD_BEFORE.search(before):
            continue
        digits = (m.group("int") or "0").replace(",", "") + (m.group("frac") or m.group("bare") or "")
        value = Fraction(digits)
        values = (value, value / 100) if m.group("pct") else (value,)
        yield m.group(0).strip(), values, bool(_RESULT_MARK_BEFORE.search(before))


def word_numbers_in(text: str) -> Iterator[Fraction]:
    for m in _NUMBER_WORDS.finditer(text):
        total = current = 0
        for word in re.findall(r"[a-z]+", m.group(0).lower()):
            if word in _UNITS:
                current += _UNITS[word]
            elif word in _TENS:
                current += _TENS[word]
            elif word in _SCALES:
                total += max(current, 1) * _SCALES[word]
                current = 0
        yield Fraction(total + current)
    for m in _SPECIAL_WORDS.finditer(text):
        yield from (Fraction(v) for v in _SPECIAL[m.group(1).lower()])


def question_values(question: str, choices: Iterable[str] | None = None) -> set[Fraction]:
    text = "\n".join([question, *(choices or [])])
    values = {v for _, candidates, _ in numbers_in(text) for v in candidates}
    values.update(word_numbers_in(text))
    return values


def _derivable(value: Fraction, sources: set[Fraction], seen: set[Fraction]) -> bool:
    """Whether value = a op b with a from the question or the steps and b grounded (constants too).

    Two constants alone never ground a number: 30 + 7 would make almost anything traceable.
    """
    for a in sources:
        if value - a in seen or a - value in seen or value + a in seen or value * a in seen:
            return True
        if (a and value / a in seen) or (value and a / value in seen):
            return True
    return False


def ungrounded_numbers(f: TraceFacts) -> list[tuple[int, str]]:
    """(1-based step, number as written) for each number no source accounts for, first use only."""
    sources = question_values(f.trace.question, f.trace.choices)
    seen = sources | ALLOWED_CONSTANTS
    report = f.step_report
    found = []
    for index, step in enumerate(report.steps, start=1):
        results = {v for c in report.claims if c.step == index for v in (c.claimed, c.computed) if v is not None}
        for written, candidates, is_result in numbers_in(step):
            if not is_result and not any(v in seen or v in results for v in candidates):
                if not any(_derivable(v, sources, seen) for v in candidates):
                    found.append((index, written))
            sources.update(candidates)  # once written, a number is a source for what follows
            seen.update(candidates)
        sources.update(results)
        seen.update(results)
    return found


def numbers_grounded(f: TraceFacts, *, drop_ungrounded: bool) -> FilterVerdict:
    found = ungrounded_numbers(f)
    if not found:
        return PASS
    details = {"numbers": [written for _, written in found[:10]], "first_step": found[0][0], "count": len(found)}
    return drop("ungrounded_number", **details) if drop_ungrounded else flag("ungrounded_number", **details)
