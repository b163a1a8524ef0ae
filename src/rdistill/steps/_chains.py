"""Reading "=" chains into claims and judging each link: labels, percent readings, rounding, units.

The policy lives here (see the package docstring): a number on the left is a label, chains link to the
latest computed expression, and a link mixing two units is kept unchecked rather than called wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from rdistill.steps._claims import Claim
from rdistill.steps._evaluate import evaluate_expression
from rdistill.steps._parser import _EQUALS, _HARD_STOPS, _MAX_LOOKBACK, _Parser, _Part
from rdistill.steps._tokens import APPROX, LP, NEWLINE, NUM, OP, OPAQUE, RP, WORD, _Token

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
