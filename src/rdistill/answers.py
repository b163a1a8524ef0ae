"""Answers: infer their type, pull them out of free-form reasoning, and judge them against gold.

One module serves data filtering, training rewards and evaluation, so all three agree on what
"correct" means. Everything here is pure and thread-safe; `math_verify` (and with it sympy) is
imported lazily, only when a symbolic comparison is actually needed.

Conventions worth knowing:
- Extraction takes the *last* explicit answer (`\\boxed{}`, "The answer is", "Answer:", "####",
  `<answer>` tags...). A bare last number is only a fallback when no explicit answer exists.
- Numeric answers are returned in a canonical form ("$1,234.50" -> "1234.5"); a percent sign is kept
  ("45%") because 45% may be compared with 0.45. Units and currency are dropped.
- Numeric equality is exact (Fractions): 0.5 == 1/2, but 12 != 12.5 and 0.333 != 1/3.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import NamedTuple

from rdistill.errors import UnknownNameError
from rdistill.records import ANSWER_TYPES, AnswerType

logger = logging.getLogger(__name__)

__all__ = ["Verdict", "check", "extract_answer", "infer_answer_type", "judge", "parse_number"]

# Model outputs can be huge or adversarial; spans and comparisons are bounded to stay fast.
_MAX_SPAN_CHARS = 400
_MAX_NUMBER_CHARS = 200
_MAX_SYMBOLIC_CHARS = 400
_CHOICE_LETTERS = "ABCDEFGHIJ"

_TRUE_WORDS = frozenset({"yes", "true", "correct", "y", "t", "1"})
_FALSE_WORDS = frozenset({"no", "false", "incorrect", "n", "f", "0"})


@dataclass(frozen=True)
class Verdict:
    extracted: str | None
    correct: bool


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------

class _Number(NamedTuple):
    value: Fraction
    percent: bool


_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
# Words after a number that turn it into a symbolic expression rather than a unit ("2 pi", "3 i").
_SYMBOLIC_WORDS = re.compile(r"(?i)(?<![a-z])(pi|sqrt|e|i|x|y|z|n|k|ln|log|sin|cos|tan|exp|inf|infinity)(?![a-z])"
                             r"|[π√∞]")
_UNITLESS_NUMBER = re.compile(r"""
    (?P<sign>[-+]?)\s*
    (?:
        (?P<whole>\d+)\s+(?P<mnum>\d+)\s*/\s*(?P<mden>\d+)                  # mixed number: 2 1/2
      | \\[dt]?frac\s*\{\s*(?P<lnum>[\d.]+)\s*\}\s*\{\s*(?P<lden>[\d.]+)\s*\}   # \frac{3}{4}
      | \\[dt]?frac\s*(?P<snum>\d)(?P<sden>\d)                               # \frac34
      | (?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE](?P<exp>[-+]?\d{1,3}))?
        (?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?                                  # 3/4, 1.5/2
    )
    \s*(?P<pct>%|percent\b|per\s+cent\b)?
    (?P<rest>.*)$
""", re.X | re.S)
_LATEX_NOISE = [
    (re.compile(r"(?<=\d)\{,\}(?=\d)"), ","),  # 1{,}000
    (re.compile(r"(?<=\d)\\[,!; ](?=\d)"), ""),  # 1\,000
    (re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}"), r" \1 "),
    (re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree"), " "),
    (re.compile(r"\\left|\\right|\\[,!;: ]|\\displaystyle"), " "),
    (re.compile(r"\\%"), "%"),
    (re.compile(r"\\\$"), "$"),
    (re.compile(r"(?<=[A-Za-z])\^\s*\{?\s*[23]\s*\}?|[²³]"), ""),  # m^2, cm³: unit powers, not numbers
]


def _strip_latex_noise(s: str) -> str:
    for pattern, repl in _LATEX_NOISE:
        s = pattern.sub(repl, s)
    return s


def _parse_number_detail(s: str) -> _Number | None:
    if not isinstance(s, str) or not s.strip() or len(s) > _MAX_NUMBER_CHARS:
        return None
    t = unicodedata.normalize("NFKC", s).replace("−", "-").replace("–", "-")
    t = _strip_latex_noise(t)
    t = re.sub(r"[$€£¥]", " ", t)
    t = re.sub(r"^[\s*`]+|[\s*`.,;:?]+$", "", t)  # markdown emphasis and full stops, not "5!"
    if t.startswith("(") and t.endswith(")") and t.count("(") == 1:  # "(12)" but not "(1, 2)"
        t = t[1:-1].strip()
    m = _UNITLESS_NUMBER.match(t)
    if not m:
        return None
    rest = m.group("rest").strip()
    scale = 1
    scale_match = re.match(r"(?i)(hundred|thousand|million|billion|trillion)\b", rest)
    if scale_match:
        scale = _SCALES[scale_match.group(1).lower()]
        rest = rest[scale_match.end():].strip()
    percent = bool(m.group("pct"))
    if rest.startswith("%"):
        percent, rest = True, rest[1:].strip()
    # Whatever follows must read as a unit ("apples", "km/h"), not as more math or another number.
    if re.search(r"\d|[=+*^<>\\()\[\]{}|,!]", rest) or _SYMBOLIC_WORDS.search(rest):
        return None
    try:
        value = _number_value(m)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    if value is None:
        return None
    if m.group("sign") == "-":
        value = -value
    return _Number(value * scale, percent)


def _number_value(m: re.Match) -> Fraction | None:
    if m.group("whole") is not None:
        return int(m.group("whole")) + Fraction(int(m.group("mnum")), int(m.group("mden")))
    if m.group("lnum") is not None:
        return Fraction(m.group("lnum")) / Fraction(m.group("lden"))
    if m.group("snum") is not None:
        return Fraction(int(m.group("snum")), int(m.group("sden")))
    value = Fraction(m.group("num").replace(",", ""))
    if m.group("exp") is not None:
        value *= Fraction(10) ** int(m.group("exp"))
    if m.group("den") is not None:
        value /= Fraction(m.group("den"))
    return value


def parse_number(s: str) -> Fraction | None:
    """Read a plain number as an exact Fraction, or None if `s` is not one.

    Accepts thousands commas, currency ("$12"), percent ("45%" -> 45: the sign is dropped, not
    divided out), units ("7 apples", "18 dollars"), trailing ".0", signs, decimals, fractions
    ("3/4", "\\frac{3}{4}", "2 1/2"), scientific notation and scale words ("1.5 million").
    Anything with more math in it ("2 pi", "5 + 3", "x = 5") is not a plain number.
    """
    parsed = _parse_number_detail(s)
    return parsed.value if parsed else None


def _format_number(value: Fraction) -> str:
    """Canonical text of a number: integers plainly, terminating decimals as decimals, else p/q."""
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    with localcontext() as ctx:
        ctx.prec = 1000
        text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _format_parsed(parsed: _Number) -> str:
    return _format_number(parsed.value) + ("%" if parsed.percent else "")


# Finds number-like tokens in prose; each hit is then read by `_parse_number_detail`.
_NUMBER_TOKEN = re.compile(r"""
    (?<![\w.])
    (?:[-+−]\s?)?(?:\\?\$\s?)?(?:[-−]\s?)?
    (?:
        \\[dt]?frac\s*\{\s*[\d.]+\s*\}\s*\{\s*[\d.]+\s*\}
      | (?:(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d{1,3}(?!\d))?
        (?:\s?/\s?\d+(?:\.\d+)?(?![\d.]))?
    )
    (?:\s?(?:\\?%|percent\b))?
""", re.X)


def _number_tokens(text: str) -> list[str]:
    text = _strip_latex_noise(text)
    return [m.group(0) for m in _NUMBER_TOKEN.finditer(text)]


# --------------------------------------------------------------------------------------------
# Cleaning spans
# --------------------------------------------------------------------------------------------

_FILLER = re.compile(r"(?i)^(?:(?:is|are|be|therefore|thus|hence|so|then|simply|exactly|approximately|about|"
                     r"roughly|clearly)\b|[:=])\s*:?\s*")
_ENCLOSURES = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"), ("**", "**"), ("__", "__"),
               ("`", "`"), ("*", "*"), ('"', '"'), ("“", "”"))


def _braced(text: str, open_idx: int) -> tuple[str, int] | None:
    """Content of the brace group opening at `open_idx`, and the index after it; None if unclosed."""
    depth, i = 0, open_idx
    while i < len(text):
        c = text[i]
        if c == "\\":  # an escaped character ("\{" in a set) never opens or closes a group
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[open_idx + 1:i], i + 1
        i += 1
    return None


def _unwrap_boxed(s: str) -> str:
    m = re.match(r"\\(?:boxed|fbox)\s*\{", s)
    if m:
        inner = _braced(s, m.end() - 1)
        if inner and not s[inner[1]:].strip(" .$"):
            return inner[0]
    return s


def _clean(span: str) -> str:
    """Peel what models wrap answers in: whitespace, markdown, math delimiters, boxes, full stops."""
    s = span.strip()
    for _ in range(8):
        before = s
        s = _FILLER.sub("", s.strip()).strip()
        s = s.rstrip(".,;:。").strip()
        for left, right in _ENCLOSURES:
            if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
                inner = s[len(left):len(s) - len(right)]
                if left not in ("$", "*", "`") or (left not in inner):
                    s = inner.strip()
                    break
        s = _unwrap_boxed(s)
        if s.startswith("**") and s.count("**") == 1:  # a bold left open by a cut span
            s = s[2:]
        if s.endswith("**") and s.count("**") == 1:
            s = s[:-2]
        if s == before:
            break
    return s


def _unwrap_text_commands(s: str) -> str:
    s = re.sub(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox)\s*\{([^{}]*)\}", r"\1", s)
    return s.strip()


# --------------------------------------------------------------------------------------------
# Answer type inference
# --------------------------------------------------------------------------------------------

_LATEX_COMMAND = re.compile(r"\\([a-zA-Z]+)")
_PLAIN_LATEX = frozenset({"text", "mathrm", "mbox", "textbf", "left", "right", "displaystyle"})
_MATH_IDENTIFIERS = frozenset({"pi", "sqrt", "inf", "infty", "infinity", "oo", "sin", "cos", "tan", "log",
                               "ln", "exp", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "and", "or"})
_MATH_CHARS = re.compile(r"^[\w\s.,+\-*/=^()\[\]{}<>!|:%≤≥±≠∞π√·×−']+$")


def _looks_symbolic(s: str) -> bool:
    """True for LaTeX or plain math (expressions, equations, tuples, intervals), not for prose."""
    if not s or len(s) > _MAX_SYMBOLIC_CHARS:
        return False
    commands = set(_LATEX_COMMAND.findall(s))
    if commands - _PLAIN_LATEX or re.search(r"[\^π√∞≤≥±]|\\[{}]", s):  # \{1, 2\} is a set
        return True
    s = _strip_latex_noise(s).strip()  # "\left(1, 2\right)" is judged like "(1, 2)"
    if not s or not _MATH_CHARS.match(s):
        return False
    # Letters are variables ("x", or "xy" in "2xy"); longer words must be known functions or constants.
    if any(len(w) > 2 and w.lower() not in _MATH_IDENTIFIERS for w in re.findall(r"[A-Za-z]+", s)):
        return False
    if re.search(r"\d|[+\-*/=<>]", s):
        return True
    return s.lower() in ("pi", "infinity", "inf", "oo")


def _choice_letter_of(s: str, choices: list[str] | None) -> str | None:
    """A lone choice letter such as "B", "(b)", "B.", "[C]" or "\\text{D}", upper-cased."""
    t = _unwrap_text_commands(_clean(s))
    m = re.fullmatch(r"[(\[{]?\s*([A-Ja-j])\s*[)\]}]?[.:]?", t)
    if not m:
        return None
    letter = m.group(1)
    bracketed = t[0] in "([{"
    if letter.islower() and not bracketed and not choices:
        return None  # a bare lowercase letter is more likely a variable than an option
    letter = letter.upper()
    if choices and _CHOICE_LETTERS.index(letter) >= len(choices):
        return None
    return letter


def infer_answer_type(answer: str, choices: list[str] | None = None) -> AnswerType:
    """Guess how an answer should be judged from the gold answer itself."""
    core = _clean(_as_text(answer))
    low = core.lower()
    if low in ("yes", "no", "true", "false"):
        return "boolean"
    if choices:
        if _choice_letter_of(core, choices) or _choice_index_of_text(core, choices) is not None:
            return "choice"
    elif re.fullmatch(r"\(?[A-E]\)?", core):
        return "choice"
    commands = set(_LATEX_COMMAND.findall(core))
    if parse_number(core) is not None and not (commands - _PLAIN_LATEX) and "^" not in core:
        return "numeric"
    if _looks_symbolic(core):
        return "math"
    return "text"


# --------------------------------------------------------------------------------------------
# Finding answer spans in reasoning
# --------------------------------------------------------------------------------------------

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


def _choice_index_of_text(s: str, choices: list[str]) -> int | None:
    norm = _normalize_text(s)
    if not norm:
        return None
    for i, choice in enumerate(choices):
        if _normalize_text(choice) == norm:
            return i
    return None


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


# --------------------------------------------------------------------------------------------
# Judging
# --------------------------------------------------------------------------------------------

def _check_type(answer_type: str | None) -> None:
    # A typo such as "number" would otherwise silently judge everything as text.
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        raise UnknownNameError("answer type", str(answer_type), list(ANSWER_TYPES))


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _normalize_text(s: str) -> str:
    """Case-, whitespace- and punctuation-insensitive form for text answers."""
    s = unicodedata.normalize("NFKC", _unwrap_text_commands(_clean(s))).casefold()
    s = re.sub(r"[.'’]", "", s)  # "U.S.A." == "USA", "don't" == "dont"
    s = "".join(" " if unicodedata.category(c).startswith("P") or c in "`~^$" else c for c in s)
    return " ".join(s.split())


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


# --------------------------------------------------------------------------------------------
# Symbolic comparison
# --------------------------------------------------------------------------------------------

def _normalize_latex(s: str) -> str:
    s = _clean(s)
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"\\left|\\right|\\displaystyle|\\[,!;: ]|\s+", "", s)
    s = re.sub(r"\^\{?\\circ\}?|°", "", s)
    return s.rstrip(".")


def _plain_to_latex(s: str) -> str:
    """Plain-text math ("2pi", "sqrt(2)", "x**2", "inf") in the LaTeX math-verify reads best."""
    s = s.replace("**", "^").replace("π", "\\pi ").replace("∞", "\\infty ")
    s = re.sub(r"(?<![A-Za-z\\])sqrt\s*\(([^()]*)\)", r"\\sqrt{\1}", s)
    s = re.sub(r"(?<![A-Za-z\\])pi(?![A-Za-z])", r"\\pi ", s)
    s = re.sub(r"(?<![A-Za-z\\])(?:infinity|inf|oo)(?![A-Za-z])", r"\\infty ", s)
    return s


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


def _math_verify_timeout() -> int | None:
    # math-verify times out with signal.alarm, which only works in the main thread on POSIX. Generous: a timed-out
    # comparison counts as unequal, and a busy machine (or sympy's first import) can take seconds.
    if os.name == "posix" and threading.current_thread() is threading.main_thread():
        return 10
    return None


@functools.lru_cache(maxsize=8192)
def _math_verify_parse(expr: str, timeout: int | None) -> tuple:
    from math_verify import parse

    # Wrapped in $...$ so that math-verify reads the whole string as one LaTeX expression.
    return tuple(parse(f"${expr}$", parsing_timeout=timeout, raise_on_error=False))


def _math_verify_equal(predicted: str, gold: str) -> bool | None:
    """True/False from math-verify, or None when it could not parse one side."""
    from math_verify import verify

    timeout = _math_verify_timeout()
    try:
        gold_parsed = _math_verify_parse(gold, timeout)
        pred_parsed = _math_verify_parse(predicted, timeout)
    except ValueError:
        # The signal-based timeout is refused where signals are unavailable (e.g. a sub-interpreter).
        timeout = None
        gold_parsed = _math_verify_parse(gold, timeout)
        pred_parsed = _math_verify_parse(predicted, timeout)
    if not gold_parsed or not pred_parsed:
        return None
    return bool(verify(list(gold_parsed), list(pred_parsed), timeout_seconds=timeout, raise_on_error=False))


_SAFE_SYMPY_INPUT = re.compile(r"^[0-9a-z+\-*/().,\s]+$")


def _sympy_equal(predicted: str, gold: str) -> bool:
    """Last resort: a small LaTeX subset through sympy. Input is whitelisted before `parse_expr`,
    which evaluates Python, so model output can never run code."""
    try:
        import sympy
        from sympy.parsing.sympy_parser import parse_expr

        def to_sympy(s: str):
            t = _normalize_latex(s)
            for _ in range(4):  # nested fractions
                t = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", t)
            t = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", t)
            t = t.replace("\\pi", "pi").replace("\\cdot", "*").replace("\\times", "*").replace("^", "**")
            t = t.replace("{", "(").replace("}", ")")
            words = set(re.findall(r"[a-z]+", t))
            if not _SAFE_SYMPY_INPUT.match(t) or words - {"sqrt", "pi", "x", "y", "z", "n", "a", "b", "c"}:
                return None
            return parse_expr(t, evaluate=True)

        a, b = to_sympy(predicted), to_sympy(gold)
        if a is None or b is None:
            return False
        return bool(sympy.simplify(a - b) == 0)
    except Exception as exc:  # unparseable or unsupported: not provably equal
        logger.debug("sympy fallback could not compare: %s", exc)
        return False
