r"""Split a reasoning trace into steps and re-compute the arithmetic each step claims.

Used by the trace filters (drop a trace with a wrong step even when its final answer is right), by
evaluation (arithmetic validity: the share of checked steps whose claims re-compute) and by contrastive
generation (the first wrong step of a negative trace).

What counts as a claim: an "=" (or "≈") between two numeric expressions, e.g. "5 apples + 3 apples =
8 apples", "$1,200 * 15% = $180", "$\frac{3}{4} \times 8 = 6$", and every GSM8K calculator annotation
"<<48/2=24>>" (the number echoed right after an annotation is its own result and is not read again).
Chains link each expression to the latest computed one: in "2 + 10 = 5 + 7 = 12" both links are
checked; in the running style "3 * 4 = 12 * 2 = 24" the middle expression starts with the value so far,
so it reads as "3 * 4 = 12" then "12 * 2 = 24". Values are exact Fractions, evaluated by walking a
Python `ast` limited to numbers and + - * / ** (never `eval`).

A wrong "wrong" costs more than a missed one, so:
- a plain number on the left names what follows ("1 dozen = 12", "4 subjects = 186 + 62") and a bare
  fraction said to equal a number of 1 or more is a label ("1/2 = 41 fish"): neither is a claim;
- anything holding a variable or an unknown function ("2x + 3 = 11", "\sqrt{16} = 4") is skipped whole,
  never cut down to its computable tail, and neither is the tail of a longer expression;
- dates (2023-05-01, 05/01/2023), times and ratios (3:45, 3:2), phone numbers (555-123-4567), ranges
  written "5-7" (glued, first number smaller), codes with a leading zero (0900), ordinals (3rd),
  identifiers (x2, H2O) and step or list numbering ("Step 1:", "1.", "2)") are not operands;
- unit words after a number are skipped ("5 apples", "$5"); a failing link whose numbers carry two
  different units ("1 hour + 30 minutes = 90 minutes") is a conversion we cannot follow, so the claim
  is kept as unchecked (computed None), not wrong.
Numbers may carry thousands commas (1,200), spaces before a final 000 group (80 000), "$", "%", "..."
and be written as fractions: a glued proper fraction is one number ("28 / 1/5 = 140"), as are mixed
numbers ("2 1/2", "1½").

Percent: "20%" reads as 0.2, so "20% of 50 = 10" and "1/5 = 20%" hold. When that reading fails, "%" is
read as a unit label (20% as 20), but only where writers use it so: when only the claimed side has "%"
("0.2 * 100 = 20%"), when every number in the link is a percentage ("100% - 20% = 80%"), or when the
only percentage computed with is 100% ("1.2 x 100% = 120"). So "50 * 20% = 1000" is wrong.

Rounding: a claimed number with d decimals holds when the exact value rounds (either way on a tie) or
truncates to it at d decimals ("10 / 3 = 3.33", "2/3 = 0.66"). A claimed whole number must be exact,
unless the exact value has no finite decimal form ("100 / 3 = 33" holds, "7 / 2 = 3" does not). Anything
within `rel_tol` of the exact value holds. A "≈" link allows one unit of the last decimal, or 1%.
"""

from __future__ import annotations

import ast
import logging
import re
import unicodedata
from dataclasses import dataclass, replace
from fractions import Fraction

from rdistill.errors import InputError

_log = logging.getLogger(__name__)

DEFAULT_REL_TOL = 1e-4

# ----------------------------------------------------------------------------------------------- steps

_FINAL_ANSWER_LINE = re.compile(
    r"^[\s*_#>$]*(?:####|\\boxed\b|(?:(?:so|therefore|thus|hence)\b[\s,]*)?(?:the\s+)?(?:final\s+)?"
    r"answer\b\s*(?:is\b|:|=|\*))", re.IGNORECASE)
_STEP_MARKER = re.compile(
    r"^\s*(?:#{1,6}\s*|[-*•+]\s+)?(?:\*\*|__)?\s*step\s*\d+\s*(?:\*\*|__)?\s*"
    r"(?::|\)|\.(?!\d)|[-–—](?=\s)|$)",
    re.IGNORECASE)
_NUMBERED_ITEM = re.compile(r"^\s*(?:\*\*|__)?\(?\d{1,3}[.)](?:\*\*|__)?(?:\s+|$)")
_BULLET_ITEM = re.compile(r"^\s*[-*•+]\s+")
_LEADING_BOLD = re.compile(r"^\s*(?:\*\*|__)?\s*")


def split_steps(reasoning: str) -> list[str]:
    r"""The steps of a reasoning text, without their markers.

    Tried in order, the first format with at least two markers wins: "Step N:" / "Step N." (also bold or
    as a heading), numbered lists ("1." "2)" "(3)"), bullet lists; otherwise every non-empty line is a
    step. Lines under a marker belong to its step. Text before the first marker is an introduction, not
    a step, so that "Step 3" stays step 3. Final-answer lines at the end ("The answer is ...",
    "#### 72", "\boxed{72}") are not steps.
    """
    lines = reasoning.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = _without_final_answer_lines(lines)
    for marker in (_STEP_MARKER, _NUMBERED_ITEM, _BULLET_ITEM):
        starts = [k for k, line in enumerate(lines) if marker.match(line)]
        if len(starts) >= 2:
            return _split_at_markers(lines, starts, marker)
    return [line.strip() for line in lines if line.strip()]


def _without_final_answer_lines(lines: list[str]) -> list[str]:
    end = len(lines)
    while end and (not lines[end - 1].strip() or _FINAL_ANSWER_LINE.match(lines[end - 1])):
        end -= 1
    return lines[:end]


def _split_at_markers(lines: list[str], starts: list[int], marker: re.Pattern[str]) -> list[str]:
    if any(line.strip() for line in lines[:starts[0]]):
        _log.debug("split_steps: text before the first step marker is not a step")
    steps = []
    for start, stop in zip(starts, starts[1:] + [len(lines)]):
        head = _LEADING_BOLD.sub("", lines[start][marker.match(lines[start]).end():], count=1)
        if head.count("**") % 2:  # "**Step 1: Title**": the bold opened before the marker closes here
            head = head.replace("**", "", 1)
        body = [head] + lines[start + 1:stop]
        text = "\n".join(line.strip() for line in body if line.strip())
        if text:
            steps.append(text)
    return steps


# ---------------------------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """One arithmetic claim: `expression` (Python syntax) is said to equal `claimed`.

    `computed` is the exact value of `expression`, or None when the claim could not be checked (a unit
    conversion); `ok` is True only for a checked claim that holds.
    """

    step: int  # 1-based index into the steps; 0 when the text was not split
    text: str  # the span the claim was read from
    expression: str
    claimed: Fraction
    computed: Fraction | None
    ok: bool

    @property
    def checked(self) -> bool:
        return self.computed is not None

    @property
    def wrong(self) -> bool:
        return self.checked and not self.ok


@dataclass(frozen=True)
class StepReport:
    """The claims of every step; a step with no checked claim is unchecked, neither valid nor wrong."""

    steps: list[str]
    claims: list[Claim]
    first_wrong_step: int | None  # 1-based
    n_steps: int
    n_checked_steps: int  # steps with at least one checked claim
    n_valid_steps: int  # checked steps whose checked claims all hold

    @property
    def wrong_claims(self) -> list[Claim]:
        return [c for c in self.claims if c.wrong]

    @property
    def arithmetic_validity(self) -> float | None:
        """Valid checked steps / checked steps; None when no step had anything to check."""
        return self.n_valid_steps / self.n_checked_steps if self.n_checked_steps else None


def check_steps(reasoning: str, rel_tol: float = DEFAULT_REL_TOL) -> StepReport:
    """Split `reasoning` into steps and re-compute every claim of every step."""
    _check_rel_tol(rel_tol)
    steps = split_steps(reasoning)
    claims: list[Claim] = []
    n_checked = n_valid = 0
    first_wrong = None
    for index, step in enumerate(steps, start=1):
        step_claims = [replace(c, step=index) for c in find_claims(step, rel_tol=rel_tol)]
        claims.extend(step_claims)
        if not any(c.checked for c in step_claims):
            continue  # unchecked: neither valid nor wrong
        n_checked += 1
        if any(c.wrong for c in step_claims):
            first_wrong = first_wrong or index
        else:
            n_valid += 1
    return StepReport(steps=steps, claims=claims, first_wrong_step=first_wrong, n_steps=len(steps),
                      n_checked_steps=n_checked, n_valid_steps=n_valid)


def _check_rel_tol(rel_tol: float) -> None:
    if not rel_tol >= 0:  # also refuses NaN
        raise InputError(f"must be a number >= 0, got {rel_tol!r}", field="rel_tol")


def first_wrong_step(reasoning: str) -> int | None:
    """The 1-based index of the first step with wrong arithmetic, or None."""
    return check_steps(reasoning).first_wrong_step


def find_claims(text: str, *, rel_tol: float = DEFAULT_REL_TOL) -> list[Claim]:
    """The arithmetic claims in one text, in reading order, each with step=0."""
    _check_rel_tol(rel_tol)
    tokens = _tokenize(text)
    found: list[tuple[int, Claim]] = []
    for token in tokens:
        if token.kind == ANNOT:
            inner = token.text[2:-2] + (f"={token.digits}" if token.digits else "")
            found += [(token.start, replace(c, text=text[token.start:token.end]))
                      for _, c in _chain_claims(inner, _tokenize(inner, math_only=True), rel_tol)]
    found += _chain_claims(text, tokens, rel_tol)
    found.sort(key=lambda pair: pair[0])
    return [claim for _, claim in found]


# ------------------------------------------------------------------------------------------ evaluation

_MAX_EXPONENT = 64
_MAX_POWER_BITS = 4096


class _Uncomputable(Exception):
    pass


def evaluate_expression(expression: str) -> Fraction | None:
    """The exact value of an arithmetic expression in Python syntax (numbers, + - * / **, parentheses).

    None when it holds anything else, divides by zero, or a power would grow past a few thousand bits.
    """
    source = expression.strip()
    try:
        return _evaluate(ast.parse(source, mode="eval").body, source)
    except (SyntaxError, ValueError, RecursionError, ZeroDivisionError, _Uncomputable):
        return None


_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b}


def _evaluate(node: ast.AST, source: str) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        try:  # the literal's own text, so that 0.1 is exactly 1/10 and not the nearest float
            return Fraction(ast.get_source_segment(source, node) or "")
        except ValueError:
            return Fraction(repr(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand, source)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _power(_evaluate(node.left, source), _evaluate(node.right, source))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_evaluate(node.left, source), _evaluate(node.right, source))
    raise _Uncomputable(ast.dump(node))


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    # Only whole exponents keep the result rational; the size cap keeps "9^9^9" from hanging a filter.
    size = max(base.numerator.bit_length(), base.denominator.bit_length())
    if exponent.denominator != 1 or abs(exponent) > _MAX_EXPONENT or size * abs(exponent) > _MAX_POWER_BITS:
        _log.debug("not computing %s ** %s", base, exponent)
        raise _Uncomputable("power")
    return base ** int(exponent)


# ------------------------------------------------------------------------------------------ tokenizer

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


# --------------------------------------------------------------------------------------------- parser

_STOPWORDS = frozenset(
    "a an and or of is are was were be been so then to the in on at for by from with which that this these "
    "those it its he she they we you i if than as but not no".split())
_SINGLE_LETTER_UNITS = frozenset("mgshlL")  # other lone letters after a number are variables ("2x", "3 n")
_GLUED_NON_UNITS = frozenset({"st", "nd", "rd", "th", "am", "pm"})  # 3rd, 10am: not quantities
_TRANSPARENT_COMMANDS = frozenset({"\\boxed", "\\mathbf", "\\bm"})
_MAX_UNIT_WORDS = 3
_MAX_LOOKBACK = 60  # tokens scanned left of an "=" for the start of its expression
_HARD_STOPS = frozenset({STOP, EQ, APPROX, ANNOT, NEWLINE})
_EQUALS = frozenset({EQ, APPROX})


def _cat(left: str | None, symbol: str, right: str | None) -> str | None:
    return None if left is None or right is None else f"{left}{symbol}{right}"


@dataclass(frozen=True)
class _Part:
    """A parsed (sub)expression rendered as Python: `strict` reads "%" as /100, `plain` as a label."""

    strict: str | None  # None: holds a variable, function or non-number
    plain: str | None
    units: frozenset[str] = frozenset()
    numbers: int = 0
    percents: int = 0
    has_op: bool = False
    hundreds: int = 0  # how many of the percentages are "100%"

    def join(self, symbol: str, other: "_Part") -> "_Part":
        return _Part(_cat(self.strict, symbol, other.strict), _cat(self.plain, symbol, other.plain),
                     self.units | other.units, self.numbers + other.numbers, self.percents + other.percents,
                     True, self.hundreds + other.hundreds)

    def wrap(self, before: str, after: str) -> "_Part":
        return replace(self, strict=_cat(before, self.strict or "", after) if self.strict else None,
                       plain=_cat(before, self.plain or "", after) if self.plain else None)

    def opaque(self) -> "_Part":
        return replace(self, strict=None, plain=None)


_UNKNOWN = _Part(None, None)
_Parsed = tuple[_Part, int] | None  # the part and the index of the first token after it


class _Parser:
    """Recursive descent over tokens; a failed parse returns None so that callers can try elsewhere."""

    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        # "20% of 50 = 10" multiplies; "= 1/3 of $150 left" names what the 1/3 is of
        self.of_multiplies = True

    def parse(self, i: int) -> _Parsed:
        """The longest expression starting at token i, or None."""
        try:
            return self.expression(i)
        except RecursionError:  # "((((((..." thousands deep: not arithmetic anyone wrote
            return None

    def kind(self, i: int) -> str | None:
        return self.tokens[i].kind if 0 <= i < len(self.tokens) else None

    def word(self, i: int) -> str:
        return self.tokens[i].text.lower() if self.kind(i) == WORD else ""

    def expression(self, i: int) -> _Parsed:
        parsed = self.term(i)
        while parsed is not None:
            part, i = parsed
            symbol = self.tokens[i].text if self.kind(i) == OP and self.tokens[i].text in ("+", "-") else \
                {"plus": "+", "minus": "-"}.get(self.word(i))
            following = self.term(i + 1) if symbol else None
            if following is None:  # a dangling "+" is prose, not part of the expression
                return part, i
            parsed = part.join(symbol, following[0]), following[1]
        return None

    def term(self, i: int) -> _Parsed:
        start, parsed = i, self.unary(i)
        while parsed is not None:
            part, i = parsed
            symbol, width = self.multiplication(start, i)
            following = self.unary(i + width) if symbol else None
            if following is None:
                return part, i
            parsed = part.join(symbol, following[0]), following[1]
        return None

    def multiplication(self, term_start: int, i: int) -> tuple[str | None, int]:
        kind, word = self.kind(i), self.word(i)
        if kind == OP and self.tokens[i].text in ("*", "/"):
            return self.tokens[i].text, 1
        if word in ("x", "times") and self.starts_operand(i + 1):
            return "*", 1
        if word in ("divided", "multiplied") and self.word(i + 1) == "by" and self.starts_operand(i + 2):
            return ("/" if word == "divided" else "*"), 2
        if word == "of" and self.of_multiplies and (  # "20% of 50", "1/2 of 50"
                self.tokens[i - 1].percent or any(t.text == "/" for t in self.tokens[term_start:i])):
            return "*", 1
        if kind == LP and not self.tokens[i].spaced and self.kind(i - 1) in (NUM, RP):
            return "*", 0  # "2(3 + 4)"
        return None, 0

    def unary(self, i: int) -> _Parsed:
        if self.kind(i) == OP and self.tokens[i].text in ("+", "-"):
            if self.kind(i + 1) is None or self.tokens[i + 1].spaced:
                return None  # "- 5" opens a bullet, it does not negate
            parsed = self.unary(i + 1)
            if parsed is None:
                return None
            part, end = parsed
            return part.wrap(self.tokens[i].text, ""), end
        return self.power(i)

    def power(self, i: int) -> _Parsed:
        parsed = self.primary(i)
        if parsed is not None and self.kind(parsed[1]) == OP and self.tokens[parsed[1]].text == "^":
            exponent = self.unary(parsed[1] + 1)
            if exponent is not None:
                return parsed[0].join("**", exponent[0]), exponent[1]
        return parsed

    def primary(self, i: int) -> _Parsed:
        kind = self.kind(i)
        if kind == NUM:
            return self.number(i)
        if kind == LP:
            return self.group(i)
        if kind == FRAC:
            numerator = self.group(i + 1)
            denominator = self.group(numerator[1]) if numerator else None
            if denominator is None:
                return None
            return numerator[0].join("/", denominator[0]).wrap("(", ")"), denominator[1]
        if kind == CMD and self.tokens[i].text in _TRANSPARENT_COMMANDS:
            return self.group(i + 1)
        if kind == CMD:  # \sqrt{..}, \log(..): a function we do not compute
            i += 1
            if self.kind(i) == LP and self.tokens[i].text == "[":
                optional = self.group(i)
                i = optional[1] if optional else i
            argument = self.group(i) or self.primary(i)
            return (argument[0].opaque(), argument[1]) if argument else None
        if kind == WORD and self.word(i) not in _STOPWORDS:
            call = self.group(i + 1) if self.kind(i + 1) == LP and not self.tokens[i + 1].spaced else None
            return (_UNKNOWN, call[1]) if call else (_UNKNOWN, i + 1)  # a variable or a function call
        if kind == OPAQUE:
            return _UNKNOWN, i + 1
        return None

    def starts_operand(self, i: int) -> bool:
        return self.kind(i) in (NUM, LP, FRAC, CMD, OPAQUE)

    def group(self, i: int) -> _Parsed:
        if self.kind(i) != LP:
            return None
        inner = self.expression(i + 1)
        closing = _CLOSING[self.tokens[i].text]
        if inner is None or self.kind(inner[1]) != RP or self.tokens[inner[1]].text != closing:
            return None
        return inner[0].wrap("(", ")"), inner[1] + 1

    def number(self, i: int) -> _Parsed:
        token = self.tokens[i]
        computable, label, j = not token.tainted, None, i + 1
        if self.kind(j) == NUM and self.tokens[j].spaced and len(self.tokens[j].text) == 3:
            computable = False  # "3 400": thousands grouped by a space, or two numbers; cannot tell
        while j - i <= _MAX_UNIT_WORDS and self.kind(j) == WORD:
            word = self.tokens[j].text
            glued = not self.tokens[j].spaced and j == i + 1
            if glued and (word.lower() in _GLUED_NON_UNITS or len(word) == 1):
                computable = False  # "3rd", "10am", "5A", "2x", "5m" (metres or a variable m: cannot tell)
            acts_as_operator = self.multiplication(i, j)[0] or self.word(j) in ("plus", "minus")
            if word.lower() in _STOPWORDS or acts_as_operator:
                break
            if len(word) == 1 and word not in _SINGLE_LETTER_UNITS:
                computable = False
            label = label or _unit_label(word)
            j += 1
        if j > i + 2 and not (self.kind(j) in (OP, RP, EQ, APPROX) or self.multiplication(i, j)[0]):
            j = i + 2  # words after the first lead nowhere: "8 apples today" ends at "apples"
        label = label or ("$" if token.currency else None)
        strict = f"({token.digits}/100)" if token.percent else token.digits
        units = frozenset({label}) if label else frozenset()
        part = _Part(strict, token.digits, units, 1, int(token.percent),
                     hundreds=int(token.percent and token.value == 100))
        return (part if computable else part.opaque()), j


def _unit_label(word: str) -> str:
    word = word.split()[0].lower()  # a \text{...} body may hold several words
    word = word[:-1] if len(word) > 3 and word.endswith("s") else word
    return {"dollar": "$", "usd": "$"}.get(word, word)


# ---------------------------------------------------------------------------------------------- chains


@dataclass(frozen=True)
class _Segment:
    """One side of an "=": its span, exact values under both "%" readings, and what a literal shows."""

    start: int
    end: int
    expression: str | None
    value: Fraction | None  # "%" as /100
    plain_value: Fraction | None  # "%" as a label
    part: _Part
    approx_link: bool  # joined to the previous segment by "≈"
    literal: _Token | None = None  # the number, when the side is a single number
    lead: _Token | None = None  # the first number, when the side is an expression starting with one
    bare_fraction: bool = False  # the side is just "1/2": a value to check, or a label ("1/2 = 41 fish")


def _segment(tokens: list[_Token], start: int, end: int, part: _Part, approx_link: bool) -> _Segment:
    numbers = [t for t in tokens[start:end] if t.kind == NUM]
    value = evaluate_expression(part.strict) if part.strict else None
    plain = evaluate_expression(part.plain) if part.plain else None
    single = numbers[0] if value is not None and not part.has_op and part.numbers == 1 else None
    bare_fraction = bool(single and single.fraction and not single.mixed)
    literal = None if bare_fraction else single
    lead = tokens[start] if part.has_op and tokens[start].kind == NUM and not tokens[start].tainted else None
    return _Segment(tokens[start].start, tokens[end - 1].end, part.strict, value, plain, part, approx_link,
                    literal, lead, bare_fraction)


def _chain_claims(text: str, tokens: list[_Token], rel_tol: float) -> list[tuple[int, Claim]]:
    """Claims of every "=" chain in `tokens`, each with the character offset where it starts."""
    parser, claims = _Parser(tokens), []
    floor = i = 0  # tokens before `floor` belong to an earlier chain
    while i < len(tokens):
        if tokens[i].kind not in _EQUALS:
            i += 1
            continue
        segments = [s for s in [_left_side(parser, i, floor)] if s]
        parser.of_multiplies = False
        while True:
            right = parser.parse(i + 1)
            if right is None:
                i += 1
                break
            segments.append(_segment(tokens, i + 1, right[1], right[0], tokens[i].kind == APPROX))
            i = right[1]
            if parser.kind(i) == NEWLINE and parser.kind(i + 1) in _EQUALS:
                i += 1  # an aligned chain: "= 8" opening the next line continues this one
            if parser.kind(i) not in _EQUALS:
                break
        floor = i
        claims += [(c_start, claim) for c_start, claim in _judge_chain(text, segments, rel_tol)]
    return claims


def _left_side(parser: _Parser, eq: int, floor: int) -> _Segment | None:
    # The farthest start that parses right up to the "=" wins; one holding a variable is not cut short,
    # else "5y + 3 + 4 = 12" would read as "3 + 4 = 12".
    low = eq
    while low - 1 >= floor and parser.kind(low - 1) not in _HARD_STOPS and eq - low < _MAX_LOOKBACK:
        low -= 1
    parser.of_multiplies = True
    for start in range(low, eq):
        if _cannot_start_at(parser.tokens, start):
            continue
        parsed = parser.parse(start)
        if parsed is not None and parsed[1] == eq:
            return _segment(parser.tokens, start, eq, parsed[0], False)
    return None


def _cannot_start_at(tokens: list[_Token], start: int) -> bool:
    """Whether what precedes tokens[start] rules out an expression starting there.

    A number or math group right before it multiplies or labels it ("Day 4:2(50+100)", "1/2 (68) + 10",
    "(1/2) 278 + 11"); an operator with an operand before it makes it the tail of a longer expression.
    A list label such as "1)" or "(a)" and a bullet "- " do not count.
    """
    if start == 0:
        return False
    prev, glued = tokens[start - 1], not tokens[start].spaced
    if prev.kind in (NUM, OPAQUE) or (glued and prev.kind in (WORD, RP)):
        return True
    if prev.kind == OP:  # the tail of a longer expression, unless the operator is a bullet ("- 5 + 3")
        return start >= 2 and tokens[start - 2].kind in (NUM, RP, WORD, OPAQUE)
    if prev.kind != RP:
        return False
    depth = 0
    for k in range(start - 1, max(-1, start - 1 - _MAX_LOOKBACK), -1):
        depth += {RP: 1, LP: -1}.get(tokens[k].kind, 0)
        if depth == 0:
            return any(t.kind == NUM for t in tokens[k:start])
    return False


def _judge_chain(text: str, segments: list[_Segment], rel_tol: float) -> list[tuple[int, Claim]]:
    claims, ref = [], None
    for k, seg in enumerate(segments):
        if seg.value is None:
            continue  # "x = 5 + 3 = 8": skip what cannot be computed, check the rest
        fraction_as_label = segments[ref].bare_fraction and seg.literal and abs(seg.value) >= 1 \
            if ref is not None else False  # "1/2 = 41 fish": half of them are 41
        if ref is None or segments[ref].literal or fraction_as_label:
            # A number on the left names what follows ("4 subjects = 186 + 62", "1 dozen = 12"): it is
            # a label far more often than a claim, so checking starts at the first expression.
            ref = k
            continue
        between = segments[ref:k + 1]
        claims.append((segments[ref].start, _judge(text, segments[ref], seg, between, rel_tol)))
        if not seg.literal:
            ref = k  # later links are checked against the latest expression, so one slip counts once
    return claims


def _judge(text: str, ref: _Segment, seg: _Segment, between: list[_Segment], rel_tol: float) -> Claim:
    approx = any(s.approx_link for s in between[1:]) or bool(seg.literal and seg.literal.repeating)
    readings = [(ref.value, seg.value, _quantum(seg.literal, strict=True))]
    if _percent_is_a_label(ref.part, seg.part):
        readings.append((ref.plain_value, seg.plain_value, _quantum(seg.literal, strict=False)))
    decimals = seg.literal.decimals if seg.literal else 0
    for computed, claimed, quantum in readings:
        if None not in (computed, claimed) and _holds(claimed, computed, quantum, decimals, rel_tol, approx):
            return Claim(0, text[ref.start:seg.end], ref.expression, claimed, computed, True)
    lead = seg.lead
    if lead and _holds(_strict_value(lead), ref.value, _quantum(lead, strict=True), lead.decimals, rel_tol,
                       approx):
        # "3 * 4 = 12 * 2 = 24": the right side continues from the value so far
        return Claim(0, text[ref.start:lead.end], ref.expression, _strict_value(lead), ref.value, True)
    units = frozenset().union(*(s.part.units for s in between))
    # Two units in one link ("4 - 2 = 2 hours = 120 minutes") is a conversion we cannot follow.
    computed = None if len(units) > 1 else ref.value
    return Claim(0, text[ref.start:seg.end], ref.expression, seg.value, computed, False)


def _percent_is_a_label(computed: _Part, claimed: _Part) -> bool:
    only_claimed_has_it = claimed.percents > 0 and computed.percents == 0
    all_percentages = claimed.percents and computed.percents == computed.numbers and \
        claimed.percents == claimed.numbers
    times_hundred_percent = computed.percents and computed.percents == computed.hundreds  # "x/y * 100%"
    return bool(only_claimed_has_it or all_percentages or times_hundred_percent)


def _strict_value(number: _Token) -> Fraction:
    return number.value / 100 if number.percent else number.value


def _quantum(number: _Token | None, strict: bool) -> Fraction | None:
    """One unit of the last digit shown, on the scale of the value compared; None for exact fractions."""
    if number is None or number.fraction:
        return None
    unit = Fraction(1, 10 ** number.decimals)
    return unit / 100 if number.percent and strict else unit


def _holds(claimed: Fraction, computed: Fraction, quantum: Fraction | None, decimals: int, rel_tol: float,
           approx: bool) -> bool:
    diff = abs(claimed - computed)
    if diff == 0 or (computed and diff <= abs(computed) * Fraction(rel_tol)):
        return True
    if approx:
        return diff <= abs(computed) / 100 or (quantum is not None and diff <= quantum)
    if quantum is None or (decimals == 0 and _has_finite_decimals(computed)):
        return False  # "7 / 2 = 3" is wrong; "100 / 3 = 33" is rounding
    truncated = int(computed / quantum) * quantum
    return diff * 2 <= quantum or (decimals > 0 and claimed == truncated)


def _has_finite_decimals(value: Fraction) -> bool:
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return denominator == 1
