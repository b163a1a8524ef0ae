"""Text edits the faithfulness probes make to a model's reasoning: cut off its final answer, truncate it, and
alter one intermediate result. Pure functions on strings; the probes that send them to a model are in
faithfulness.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

# Where a reasoning text starts stating its final answer; everything before is the reasoning proper.
_ANSWER_STATEMENT = re.compile(
    r"(?im)(?:^|(?<=[\s.]))(?:so\s+|therefore,?\s+|thus,?\s+|hence,?\s+)?(?:the\s+)?(?:final\s+)?answer\s*(?:is\b|:)"
    r"|####|\\boxed\s*\{|</think>")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])")
_EQUALS = re.compile(r"=|≈")


def reasoning_body(text: str) -> str:
    """The reasoning before the model first states a final answer (the answer itself is what is probed)."""
    match = _ANSWER_STATEMENT.search(text)
    body = text[:match.start()] if match else text
    return body.rstrip()


def truncate(body: str, fraction: float) -> str:
    """The first `fraction` of the reasoning's words, cut at a word boundary with its layout kept."""
    if fraction <= 0:
        return ""
    words = list(re.finditer(r"\S+", body))
    keep = int(round(len(words) * fraction))
    if keep <= 0:
        return ""
    if keep >= len(words):
        return body
    return body[:words[keep - 1].end()]


@dataclass(frozen=True)
class Corruption:
    prefix: str  # the reasoning up to and including the altered line
    step: int  # 1-based step (as split_steps counts) whose result was altered; 0 if not located in a step
    original: str
    corrupted: str


def altered_number(text: str) -> str:
    """A plausible wrong value for a written number: about 20% more (at least one unit of its last digit)."""
    digits = text.replace(",", "")
    value = Decimal(digits)
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    unit = Decimal(1).scaleb(-decimals)
    new = (value * Decimal("1.2")).quantize(unit)
    if new - value < unit:
        new = value + unit
    out = f"{new:.{decimals}f}"
    return f"{int(new):,}" if "," in text and decimals == 0 else out


def corrupt_step(body: str) -> Corruption | None:
    """Alter the result of one intermediate step and cut the reasoning after that line.

    The first arithmetic claim that holds, in a step before the last one, is preferred (a result later steps
    build on); then one in the last step; a reasoning without checkable claims gets the last number of its
    next-to-last line changed instead. None when the reasoning has no number to alter.
    """
    from rdistill.steps import check_steps

    report = check_steps(body)
    located = _locate_claims(body, report)
    for want_intermediate in (True, False):
        for step, start, end in located:
            if (step < report.n_steps) == want_intermediate:
                corruption = _alter_claimed_value(body, start, end, step)
                if corruption is not None:
                    return corruption
    return _alter_last_number_of_a_line(body, report.n_steps)


def _locate_claims(body: str, report) -> list[tuple[int, int, int]]:
    """(step, start, end) of each claim that was checked and holds, found in order in the raw text."""
    found, cursor = [], 0
    for claim in report.claims:
        if not (claim.checked and claim.ok):
            continue
        start = body.find(claim.text, cursor)
        if start < 0:
            continue
        found.append((claim.step, start, start + len(claim.text)))
        cursor = start + len(claim.text)
    return found


def _alter_claimed_value(body: str, start: int, end: int, step: int) -> Corruption | None:
    span = body[start:end]
    equals = list(_EQUALS.finditer(span))
    if not equals:
        return None
    numbers = list(_NUMBER.finditer(span, equals[-1].end()))
    if not numbers:
        return None
    number = numbers[-1]
    return _replace(body, start + number.start(), start + number.end(), step)


def _alter_last_number_of_a_line(body: str, n_steps: int) -> Corruption | None:
    lines = [m for m in re.finditer(r"[^\n]+", body) if m.group().strip()]
    candidates = lines[:-1] or lines  # an intermediate line when there is one
    for line in reversed(candidates):
        numbers = list(_NUMBER.finditer(line.group()))
        if numbers:
            number = numbers[-1]
            step = 0 if n_steps <= 1 else min(n_steps, lines.index(line) + 1)
            return _replace(body, line.start() + number.start(), line.start() + number.end(), step)
    return None


def _replace(body: str, start: int, end: int, step: int) -> Corruption:
    original = body[start:end]
    corrupted = altered_number(original)
    line_end = body.find("\n", end)
    line_end = len(body) if line_end < 0 else line_end
    prefix = body[:start] + corrupted + body[end:line_end]
    return Corruption(prefix=prefix, step=step, original=original, corrupted=corrupted)
