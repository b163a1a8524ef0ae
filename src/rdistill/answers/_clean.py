"""Peeling what models wrap answers in, and the text forms every comparison starts from.

The base of the answers package (it imports none of its siblings): the size limits that keep huge or
adversarial outputs fast, unwrapping of markdown, math delimiters and boxes, the case- and
punctuation-insensitive form of text answers, and the check that an answer type is a known one.
"""

from __future__ import annotations

import re
import unicodedata

from rdistill.errors import UnknownNameError
from rdistill.records import ANSWER_TYPES

# Model outputs can be huge or adversarial; spans and comparisons are bounded to stay fast.
_MAX_SPAN_CHARS = 400
_MAX_NUMBER_CHARS = 200
_MAX_SYMBOLIC_CHARS = 400
_CHOICE_LETTERS = "ABCDEFGHIJ"


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
