"""Exact evaluation of an arithmetic expression in Python syntax, by walking a restricted `ast` (never `eval`).

Only numbers, + - * / ** and parentheses; values are Fractions, and powers are capped so that "9^9^9"
cannot hang a filter.
"""

from __future__ import annotations

import ast
import logging
from fractions import Fraction

_log = logging.getLogger(__name__)

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
