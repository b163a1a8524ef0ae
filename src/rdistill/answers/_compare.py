"""Judging: `judge` compares an extracted answer with gold under its type, `check` extracts and judges.

Numbers compare exactly (with the "45%" == "0.45" reading); math goes through `_mathverify` unless the
inputs look too costly to evaluate, in which case only their normalized strings are compared.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from rdistill.answers._clean import (_CHOICE_LETTERS, _MAX_SYMBOLIC_CHARS, _as_text, _check_type, _clean,
                                     _normalize_text)
from rdistill.answers._extract import extract_answer
from rdistill.answers._infer import _choice_index_of_text, _choice_letter_of, _looks_symbolic, infer_answer_type
from rdistill.answers._mathverify import _math_verify_equal, _normalize_latex, _plain_to_latex, _sympy_equal
from rdistill.answers._numbers import _parse_number_detail
from rdistill.records import AnswerType

logger = logging.getLogger(__name__)

_TRUE_WORDS = frozenset({"yes", "true", "correct", "y", "t", "1"})
_FALSE_WORDS = frozenset({"no", "false", "incorrect", "n", "f", "0"})


@dataclass(frozen=True)
class Verdict:
    extracted: str | None
    correct: bool


def _numeric_equal(predicted: str, gold: str) -> bool:
    p, g = _parse_number_detail(_clean(predicted)), _parse_number_detail(_clean(gold))
    if p and g:
        if p.value == g.value:
            return True
        # "45%" and "0.45" denote the same quantity; a bare 45 vs 0.45 does not.
        if g.percent != p.percent:
            percent_side, plain_side = (g, p) if g.percent else (p, g)
            return percent_side.value / 100 == plain_side.value
        return False
    if g is not None and p is None and not _looks_symbolic(_clean(predicted)):
        return False  # prose such as "none of them": nothing to compare symbolically
    return _math_equal(predicted, gold)


def _choice_key(s: str, choices: list[str] | None) -> str:
    letter = _choice_letter_of(s, choices)
    if letter:
        return letter
    if choices:
        index = _choice_index_of_text(s, choices)
        if index is not None:
            return _CHOICE_LETTERS[index]
    return "text:" + _normalize_text(s)


def _boolean_value(s: str) -> bool | None:
    word = _normalize_text(s)
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    return None


def judge(predicted: str | None, gold: str, answer_type: AnswerType | None = None,
          choices: list[str] | None = None) -> bool:
    """Whether an extracted answer matches the gold answer under `answer_type` (inferred if None)."""
    _check_type(answer_type)
    if predicted is None:
        return False
    predicted, gold = _as_text(predicted), _as_text(gold)
    if not predicted.strip() or not gold.strip():
        return False
    answer_type = answer_type or infer_answer_type(gold, choices)
    if answer_type == "numeric":
        return _numeric_equal(predicted, gold)
    if answer_type == "math":
        return _math_equal(predicted, gold)
    if answer_type == "choice":
        return _choice_key(predicted, choices) == _choice_key(gold, choices)
    if answer_type == "boolean":
        p, g = _boolean_value(predicted), _boolean_value(gold)
        return p is not None and p == g
    return _normalize_text(predicted) == _normalize_text(gold)


def check(text: str, gold: str, answer_type: AnswerType | None = None,
          choices: list[str] | None = None) -> Verdict:
    """Extract the answer from `text` and judge it against `gold`."""
    answer_type = answer_type or infer_answer_type(_as_text(gold), choices)
    extracted = extract_answer(text, answer_type, choices)
    return Verdict(extracted=extracted, correct=judge(extracted, gold, answer_type, choices))


# Inputs sympy may take unbounded time on (towers of powers, huge exponents or factorials). Outside the
# main thread math-verify has no timeout, so these are only ever compared as strings.
_EXPENSIVE = re.compile(r"\^\s*\{?\s*\(?\s*[\w.]*\s*\^|\^\s*\{?\s*\(?\s*-?\d{4,}|\*\*\s*\(?\s*-?\d{4,}|\d{5,}\s*!")


def _looks_expensive(s: str) -> bool:
    return len(s) > _MAX_SYMBOLIC_CHARS or bool(_EXPENSIVE.search(s))


def _math_equal(predicted: str, gold: str) -> bool:
    p, g = _clean(predicted), _clean(gold)
    if not p or not g:
        return False
    if _normalize_latex(p) == _normalize_latex(g):
        return True
    if _parse_number_detail(p) and _parse_number_detail(g):
        return _numeric_equal(p, g)
    if _looks_expensive(p) or _looks_expensive(g):
        logger.debug("comparing as strings only (too costly to evaluate): %.80r vs %.80r", p, g)
        return False
    p, g = _plain_to_latex(p), _plain_to_latex(g)
    try:
        result = _math_verify_equal(p, g)
    except Exception as exc:  # math-verify is third-party: any failure falls back, never crashes a run
        logger.debug("math-verify failed (%s); falling back to sympy", exc)
        result = None
    if result is None:
        return _sympy_equal(p, g)
    return result
