"""The tokenizer: numbers (with "%", "$", thousands commas, "2 1/2"), operators, words and LaTeX.

Besides splitting text into tokens it marks what must not be read as an operand: dates, times and
ratios, ranges such as "5-7", codes with a leading zero, identifiers such as "x2", and the echo that
follows a GSM8K "<<48/2=24>>" annotation.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from fractions import Fraction

NUM, OP, LP, RP, EQ, APPROX, WORD, FRAC, CMD, OPAQUE, ANNOT, STOP, NEWLINE = (
    "num", "op", "lp", "rp", "eq", "approx", "word", "frac", "cmd", "opaque", "annot", "stop", "newline")

_TOKEN = re.compile(r"""
    (?P<annot><<[^<>\n]*>>)
  | (?P<opaque>\d{4}-\d{1,2}-\d{1,2}(?!\d)|\d{1,2}[/-]\d{1,2}[/-]\d{4}(?!\d)|\d+(?::\d+)+|\d+(?:-\d+){2,})
  | (?P<num>(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d{1,3}(?:[ \u2009\u202f]\d{3})*[ \u2009\u202f]000(?![\d,])|\d+)
            (?:\.\d+)?|\.\d+)(?P<dots>\.\.\.|…)?(?P<pct>[ \t]?(?:\\?%|percent\b))?
  | (?P<vulgar>[¼½¾⅐⅑⅒⅓⅔⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞])
  | \\(?:text|mathrm|textrm|mbox|textbf|operatorname)\s*\{(?P<text>[^{}]*)\}
  | (?P<frac>\\[dt]?frac(?![A-Za-z]))
  | (?P<texop>\\(?:times|cdot|div|ast)(?![A-Za-z]))
  | (?P<approx>\\approx(?![A-Za-z])|≈|≃)
  | (?P<currency>\\?\$)
  | (?P<skip>\\(?:left|right|displaystyle|quad|qquad)(?![A-Za-z])|\\[()\[\],;:!\s])
  | (?P<cmd>\\[A-Za-z]+)
  | (?P<cmp><=|>=|!=|=>|=<|[≤≥≠<>])
  | (?P<eq>==?)
  | (?P<bold>\*\*|__)
  | (?P<op>[-+*/^×÷·⋅−–∗])
  | (?P<lp>[({\[])
  | (?P<rp>[)}\]])
  | (?P<word>[A-Za-z]+)
  | (?P<newline>[^\S\n]*\n\s*)
  | (?P<space>\s+)
  | (?P<other>.)
""", re.VERBOSE)
_KINDS = ("annot", "opaque", "num", "vulgar", "text", "frac", "texop", "approx", "currency", "skip", "cmd",
          "cmp", "eq", "bold", "op", "lp", "rp", "word", "newline", "space", "other")
_AS_KIND = {"vulgar": NUM, "text": WORD, "texop": OP, "cmp": STOP, "bold": STOP, "other": STOP}
_OP_SYMBOL = {"×": "*", "·": "*", "⋅": "*", "∗": "*", "÷": "/", "−": "-", "–": "-", "\\times": "*",
              "\\cdot": "*", "\\ast": "*", "\\div": "/"}
_CLOSING = {"(": ")", "[": "]", "{": "}"}


@dataclass
class _Token:
    kind: str
    text: str  # operators normalized to + - * / ^
    start: int
    end: int
    spaced: bool  # whitespace (or the start of the text) before it
    value: Fraction | None = None  # numbers only, "%" not applied
    digits: str = ""  # numbers: Python syntax for the value; annotations: an echo that differs
    decimals: int = 0
    percent: bool = False
    currency: bool = False  # written after "$"
    repeating: bool = False  # "8.333...": an approximation by its writer's own account
    fraction: bool = False  # "1/2", "2 1/2": exact, no decimals to round to
    mixed: bool = False  # "2 1/2"
    tainted: bool = False  # a number glued into an identifier or a malformed one ("x2", "H2O", "16,0000")


def _tokenize(text: str, math_only: bool = False) -> list[_Token]:
    tokens: list[_Token] = []
    spaced, currency = True, False
    for m in _TOKEN.finditer(text):
        kind = next(k for k in _KINDS if m.group(k) is not None)
        if kind in ("space", "skip", "currency") or (kind == "text" and not m.group("text").strip()):
            spaced = spaced or kind == "space"
            currency = kind == "currency" or (currency and kind == "skip")
            continue
        token = _Token(_AS_KIND.get(kind, kind), m.group(kind).strip(), m.start(), m.end(), spaced)
        if token.kind == OP:
            token.text = _OP_SYMBOL.get(token.text, token.text)
        if kind == "num":
            _read_number(token, m)
        if kind == "vulgar":
            value = Fraction(unicodedata.numeric(token.text)).limit_denominator(10)
            token.value, token.fraction = value, True
            token.digits = f"({value.numerator}/{value.denominator})"
        token.currency = currency
        tokens.append(token)
        spaced, currency = kind == "newline", False
    _mark_times_and_identifiers(tokens)
    _drop_annotation_echoes(tokens)
    if not math_only:  # a GSM8K annotation is pure arithmetic: "3-5" there is a subtraction
        _merge_ranges(tokens)
    _merge_fractions(tokens)
    return tokens


def _read_number(token: _Token, m: re.Match[str]) -> None:
    whole, _, decimals = re.sub(r"[,\s]", "", m.group("num")).partition(".")
    if len(whole) > 1 and whole.startswith("0"):
        token.kind = OPAQUE  # "0900", "007": a time or a code, not a quantity
        return
    token.digits = str(int(whole or "0")) + (f".{decimals}" if decimals else "")
    token.value = Fraction(token.digits)
    token.decimals = len(decimals)
    token.percent = m.group("pct") is not None
    token.repeating = m.group("dots") is not None


def _mark_times_and_identifiers(tokens: list[_Token]) -> None:
    for k, token in enumerate(tokens):
        prev = tokens[k - 1] if k else None
        nxt = tokens[k + 1] if k + 1 < len(tokens) else None
        if (token.kind == WORD and token.text in ("x", "X") and prev and prev.kind in (NUM, RP)
                and nxt and nxt.kind in (NUM, LP, FRAC)):
            token.kind, token.text = OP, "*"  # "3 x 4", "3x4"
        elif token.kind == NUM and not token.spaced and prev and (
                prev.kind in (WORD, NUM, OPAQUE)
                or (prev.text in (",", ".") and not prev.spaced and k > 1 and tokens[k - 2].kind == NUM)):
            token.tainted = True


def _drop_annotation_echoes(tokens: list[_Token]) -> None:
    # "48/2 = <<48/2=24>>24": the echo is the annotation's result again. One that differs ("<<48/2=24>>25")
    # is kept on the annotation, as one more number its expression must equal.
    k = 0
    while k + 1 < len(tokens):
        annot, echo = tokens[k], tokens[k + 1]
        if annot.kind == ANNOT and echo.kind == NUM and not echo.spaced and not echo.percent:
            result = annot.text[2:-2].rpartition("=")[2].replace("$", "").replace(",", "").strip()
            try:
                matches = Fraction(result) == echo.value
            except ValueError:
                matches = False
            annot.digits = "" if matches else echo.text
            annot.end = echo.end
            del tokens[k + 1]
        k += 1


def _is_integer(token: _Token) -> bool:
    return token.kind == NUM and not (token.decimals or token.percent or token.tainted or token.fraction)


def _merge_ranges(tokens: list[_Token]) -> None:
    k = 0
    while k + 2 < len(tokens):
        a, dash, b = tokens[k:k + 3]
        if (_is_integer(a) and _is_integer(b) and dash.kind == OP and dash.text == "-" and not dash.spaced
                and not b.spaced and a.value < b.value):
            tokens[k:k + 3] = [_Token(OPAQUE, f"{a.text}-{b.text}", a.start, b.end, a.spaced)]
        k += 1


_VULGAR = frozenset("¼½¾⅐⅑⅒⅓⅔⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞")


def _merge_fractions(tokens: list[_Token]) -> None:
    # A glued proper fraction "1/3" is one number, which is how writers mean "28 / 1/5" and "16 1/2".
    for k in reversed(range(1, len(tokens))):
        if tokens[k].kind == NUM and tokens[k].text in _VULGAR:  # "1½", "2 ¾"
            tokens[k].tainted = False
            _merge_mixed_number(tokens, k)
    k = 0
    while k + 2 < len(tokens):
        a, slash, b = tokens[k:k + 3]
        glued_on = (k and tokens[k - 1].text == "/" and not a.spaced) or (
            k + 3 < len(tokens) and tokens[k + 3].text in ("/", "^") and not tokens[k + 3].spaced)
        if (_is_integer(a) and _is_integer(b) and slash.text == "/" and slash.kind == OP and not slash.spaced
                and not b.spaced and 0 < a.value < b.value and not glued_on):
            tokens[k:k + 3] = [replace(a, end=b.end, text=f"{a.text}/{b.text}", value=a.value / b.value,
                                       digits=f"({a.digits}/{b.digits})", fraction=True)]
            _merge_mixed_number(tokens, k)
        k += 1


def _merge_mixed_number(tokens: list[_Token], k: int) -> None:
    whole_at = k - 2 if k >= 2 and tokens[k - 1].kind == WORD and tokens[k - 1].text == "and" else k - 1
    glued_ok = tokens[k].spaced or tokens[k].text in _VULGAR  # "1½" but not "11/2"
    if whole_at < 0 or not _is_integer(tokens[whole_at]) or not glued_ok:
        return
    whole, part = tokens[whole_at], tokens[k]
    tokens[whole_at:k + 1] = [replace(whole, end=part.end, text=f"{whole.text} {part.text}",
                                      value=whole.value + part.value,
                                      digits=f"({whole.digits}+{part.digits})", fraction=True,
                                      mixed=True)]
