"""Symbolic equivalence backends: math-verify (with its signal-based timeout) and a whitelisted sympy fallback.

The only place that imports `math_verify` and sympy, and only inside functions, so importing
`rdistill.answers` stays cheap; `_math_verify_timeout` is re-exported by the package for its tests.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading

from rdistill.answers._clean import _clean

logger = logging.getLogger(__name__)

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
