"""Answer type inference from the gold answer itself, and recognising math, choice letters and choice texts.

Kept apart from extraction because judging needs the same helpers (is this symbolic? which option is
this?) when it compares two answers.
"""

from __future__ import annotations

import re

from rdistill.answers._clean import (_CHOICE_LETTERS, _MAX_SYMBOLIC_CHARS, _as_text, _clean, _normalize_text,
                                     _unwrap_text_commands)
from rdistill.answers._numbers import _strip_latex_noise, parse_number
from rdistill.records import AnswerType

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


def _choice_index_of_text(s: str, choices: list[str]) -> int | None:
    norm = _normalize_text(s)
    if not norm:
        return None
    for i, choice in enumerate(choices):
        if _normalize_text(choice) == norm:
            return i
    return None


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
