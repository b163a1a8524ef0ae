"""Plain numbers: exact parsing, canonical formatting and finding number tokens in prose.

Values are exact Fractions ("$1,234.50", "45%", "2 1/2", "1.5 million" all parse), so numeric equality
elsewhere is exact: 0.5 == 1/2, but 0.333 != 1/3. Anything with more math in it is not a plain number.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import NamedTuple

from rdistill.answers._clean import _MAX_NUMBER_CHARS

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
