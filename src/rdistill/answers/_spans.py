"""Finding explicit answer spans in reasoning: `\\boxed{}`, "The answer is", "Answer:", "####", `<answer>`.

Each span records where its value starts, so that extraction can try the last explicit answer first.
Reading a span as a number, letter or boolean is left to `_extract`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from rdistill.answers._clean import _MAX_SPAN_CHARS, _braced

_ANSWER_PHRASE = re.compile(r"""
    \b(?:answers?|option|choice)\b
    (?:\s*\*\*|\s*__)?\s*
    (?:(?:is|are)\b(?!n't)\s*:?|:|=|(?:would|will|should|must)\s+be\b)
    (?:\s*\*\*|\s*__)?
""", re.I | re.X)
_NEGATED = re.compile(r"(?i)\s*(?:not|never)\b")
_ANSWER_HEADING = re.compile(r"(?im)^[ \t>#*_]*(?:the\s+)?(?:final\s+)?answer[ \t*_:]*$")
_HASHES = re.compile(r"(?m)(?:^|(?<=\s))####(?!#)[ \t]*")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*(?=\{)")
_ANSWER_TAG = re.compile(r"(?is)<answer>(.*?)(?:</answer>|$)")
# A "####" line that is a markdown heading, not a GSM8K-style answer.
_HEADING_WORDS = re.compile(r"(?i)\b(step|answer|solution|summary|conclusion|verification|verify|part|case|"
                            r"problem|approach|method|analysis|explanation|calculation|reasoning)\b")


class _Span(NamedTuple):
    start: int  # where the answer value begins: later spans win
    text: str


def _rest_of_answer(text: str, start: int) -> str:
    """The answer that follows a marker: rest of the line, or the next block if the line is empty."""
    i = start
    while i < len(text) and text[i] in " \t*_:":
        i += 1
    if i >= len(text) or text[i] == "\n":
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
    tail = text[i:i + _MAX_SPAN_CHARS * 2]
    for left, right in (("$$", "$$"), ("\\[", "\\]")):
        if tail.startswith(left):
            close = tail.find(right, len(left))
            if close != -1:
                return tail[:close + len(right)]
    return _cut_sentence(tail.split("\n", 1)[0])


def _cut_sentence(line: str) -> str:
    """Cut at the first full stop outside math and braces ("5. Next..." -> "5", "3.5" stays)."""
    depth, in_math = 0, False
    # An odd number of "$" means at least one is currency ("$18. Then..."), so none delimits math.
    dollars_delimit_math = line.replace("\\$", "").count("$") % 2 == 0
    for i, c in enumerate(line[:_MAX_SPAN_CHARS]):
        if c == "$" and dollars_delimit_math and (i == 0 or line[i - 1] != "\\"):
            in_math = not in_math
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:  # we started inside a group ("\boxed{The answer is 5}"): stop at its end
                return line[:i]
        elif c in ".!?" and depth == 0 and not in_math and (i + 1 == len(line) or line[i + 1].isspace()):
            return line[:i]
    return line[:_MAX_SPAN_CHARS]


def _answer_spans(text: str) -> list[_Span]:
    spans: list[_Span] = []
    for m in _BOXED.finditer(text):
        group = _braced(text, m.end())
        if group:
            spans.append(_Span(m.end() + 1, group[0]))
    for m in _ANSWER_TAG.finditer(text):
        spans.append(_Span(m.start(1), m.group(1)[:_MAX_SPAN_CHARS * 2]))
    for m in _ANSWER_PHRASE.finditer(text):
        rest = _rest_of_answer(text, m.end())
        if not _NEGATED.match(rest):  # "the answer is not 5" names a wrong answer
            spans.append(_Span(m.end(), rest))
    for m in _ANSWER_HEADING.finditer(text):
        spans.append(_Span(m.end(), _rest_of_answer(text, m.end())))
    for m in _HASHES.finditer(text):
        line = text[m.end():].split("\n", 1)[0].strip()
        if line and len(line.split()) <= 6 and not _HEADING_WORDS.search(line):
            spans.append(_Span(m.end(), _cut_sentence(line)))
    spans.sort(key=lambda s: s.start)
    return spans
