"""`extract_answer`: read the explicit answer spans as the answer type, with type-specific fallbacks.

Spans are tried from the last one backwards; without any explicit answer, the last number (numeric), the
closing paragraph's math (math) or the last line (choice, boolean, text) is used.
"""

from __future__ import annotations

import re

from rdistill.answers._clean import _CHOICE_LETTERS, _check_type, _clean, _unwrap_text_commands
from rdistill.answers._infer import (_LATEX_COMMAND, _PLAIN_LATEX, _choice_index_of_text, _choice_letter_of,
                                     _looks_symbolic)
from rdistill.answers._numbers import _format_parsed, _number_tokens, _parse_number_detail
from rdistill.answers._spans import _answer_spans
from rdistill.records import AnswerType

# --------------------------------------------------------------------------------------------
# Reading a span as an answer of a given type
# --------------------------------------------------------------------------------------------

_CLAUSE_BREAK = re.compile(r",\s|;|\s(?:because|since|as|which|so|where|when|if|but|and\s+then)\b|\s\(", re.I)
_EQUALS = re.compile(r"=|\\approx|≈|\\equiv")


def _numeric_from_span(span: str) -> str | None:
    s = _clean(span)
    if not s:
        return None
    parsed = _parse_number_detail(s)
    if parsed:
        return _format_parsed(parsed)
    clause = _clean(_CLAUSE_BREAK.split(s, 1)[0])
    rhs = _clean(_EQUALS.split(clause)[-1])
    parsed = _parse_number_detail(rhs)
    if parsed:
        return _format_parsed(parsed)
    if _looks_symbolic(rhs) and (set(_LATEX_COMMAND.findall(rhs)) - _PLAIN_LATEX or "^" in rhs):
        return rhs  # e.g. "\sqrt{2}": not a plain number, but judge can still compare it symbolically
    for token in _number_tokens(rhs):
        parsed = _parse_number_detail(token)
        if parsed:
            return _format_parsed(parsed)
    return None


def _math_from_span(span: str) -> str | None:
    s = _clean(span)
    if not s:
        return None
    s = _clean(re.split(r"\s(?:because|since|where|which|for\s+all)\b", s, maxsplit=1, flags=re.I)[0])
    if "$" in s:
        # Prose around inline math ("$\frac{\pi}{2}$ radians"): the math is the answer.
        segments = re.findall(r"\$\$(.+?)\$\$|\$(.+?)\$", s, re.S)
        if len(segments) == 1:
            s = _clean(segments[0][0] or segments[0][1])
        else:
            s = _clean(s.replace("$", " "))
    return s or None


_OPTION_WORD = re.compile(r"(?i)\b(?:option|choice)\s*[:#]?\s*\(?([A-Ja-j])\)?(?![\w])")
_LEADING_LETTER = re.compile(r"^(?:\(([A-Ja-j])\)|\[([A-Ja-j])\]|([A-J])(?:[).:]|\s+[-–:]|\s*$))")


def _choice_from_span(span: str, choices: list[str] | None) -> str | None:
    s = _unwrap_text_commands(_clean(span))
    if not s:
        return None
    letter = _choice_letter_of(s, choices)
    if letter:
        return letter
    found = []
    m = _LEADING_LETTER.match(s)
    if m:
        found.append(next(g for g in m.groups() if g))
    m = _OPTION_WORD.search(s)
    if m:
        found.append(m.group(1))
    for candidate in found:
        letter = candidate.upper()
        if not choices or _CHOICE_LETTERS.index(letter) < len(choices):
            return letter
    if choices:
        index = _choice_index_of_text(s, choices)
        if index is None:  # "Paris, because ..." -> try the leading clause alone
            index = _choice_index_of_text(_CLAUSE_BREAK.split(s, 1)[0], choices)
        if index is not None:
            return _CHOICE_LETTERS[index]
    return None


_BOOLEAN_WORD = re.compile(r"(?i)\b(not\s+)?(yes|no|true|false|correct|incorrect)\b")


def _boolean_from_span(span: str) -> str | None:
    m = _BOOLEAN_WORD.search(_unwrap_text_commands(_clean(span)))
    if not m:
        return None
    value = m.group(2).lower() in ("yes", "true", "correct")
    if m.group(1) and m.group(2).lower() not in ("yes", "no"):
        value = not value  # "not true", "not correct"
    return "yes" if value else "no"


def _text_from_span(span: str) -> str | None:
    s = _unwrap_text_commands(_clean(span))
    return _clean(s) or None


def _from_span(span: str, answer_type: AnswerType | None, choices: list[str] | None) -> str | None:
    if answer_type == "numeric":
        return _numeric_from_span(span)
    if answer_type == "math":
        return _math_from_span(span)
    if answer_type == "choice":
        return _choice_from_span(span, choices)
    if answer_type == "boolean":
        return _boolean_from_span(span)
    return _text_from_span(span)


# --------------------------------------------------------------------------------------------
# Fallbacks when no explicit answer is written
# --------------------------------------------------------------------------------------------

def _last_paragraph(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return paragraphs[-1] if paragraphs else ""


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _last_number(text: str) -> str | None:
    for token in reversed(_number_tokens(text)):
        parsed = _parse_number_detail(token)
        if parsed:
            return _format_parsed(parsed)
    return None


def _fallback(text: str, answer_type: AnswerType | None, choices: list[str] | None) -> str | None:
    if answer_type in ("numeric", None):
        return _last_number(text)
    if answer_type == "math":
        # Without an explicit answer, only the closing paragraph is trusted (reasoning is full of math).
        paragraph = _last_paragraph(text)
        segments = re.findall(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|\$(.+?)\$", paragraph, re.S)
        if segments:
            return _math_from_span(next(g for g in segments[-1] if g))
        if _looks_symbolic(_clean(paragraph)):
            return _clean(paragraph)
        return _last_number(paragraph)
    last_line = _last_line(text)
    if answer_type == "choice":
        whole = _choice_from_span(text, choices) if "\n" not in text.strip() else None
        if whole:
            return whole
        hits = [m.group(1) or m.group(2) for m in
                re.finditer(r"\(([A-Ja-j])\)|\*\*\(?([A-J])\)?\*\*", last_line)]
        hits += [m.group(1) for m in _OPTION_WORD.finditer(last_line)]
        for letter in reversed(hits):
            letter = letter.upper()
            if not choices or _CHOICE_LETTERS.index(letter) < len(choices):
                return letter
        return None
    if answer_type == "boolean":
        hits = list(_BOOLEAN_WORD.finditer(last_line))
        return _boolean_from_span(hits[-1].group(0)) if hits else None
    return _text_from_span(last_line)


def extract_answer(text: str, answer_type: AnswerType | None = None,
                   choices: list[str] | None = None) -> str | None:
    """The final answer written in `text`, read as `answer_type`; None if there is none.

    Explicit answers are tried from the last one backwards, so a corrected answer beats an earlier
    one, and a marker whose span does not read as the type (e.g. "the answer is correct" for a
    number) is skipped. Without any explicit answer, a type-specific fallback applies (the last
    number for numeric answers).
    """
    _check_type(answer_type)
    if not isinstance(text, str) or not text.strip():
        return None
    # Reasoning models think first; an answer after </think> is the one they commit to.
    _, sep, after_thinking = text.rpartition("</think>")
    if sep and after_thinking.strip():
        found = _extract(after_thinking, answer_type, choices)
        if found is not None:
            return found
    return _extract(text, answer_type, choices)


def _extract(text: str, answer_type: AnswerType | None, choices: list[str] | None) -> str | None:
    for span in reversed(_answer_spans(text)):
        value = _from_span(span.text, answer_type, choices)
        if value:
            return value
    return _fallback(text, answer_type, choices)
