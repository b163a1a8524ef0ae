"""Recursive-descent parser over tokens, rendering each expression as Python text (`_Part`).

A part holds two renderings ("%" as /100 and "%" as a label), its units and counts of numbers and
percentages; anything holding a variable or an unknown function is opaque (no rendering), so it is
never checked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rdistill.steps._tokens import (ANNOT, APPROX, CMD, EQ, FRAC, LP, NEWLINE, NUM, OP, OPAQUE, RP, STOP, WORD,
                                    _CLOSING, _Token)

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
