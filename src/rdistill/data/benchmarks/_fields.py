"""Field helpers shared by the benchmark converters: they read one upstream row, never a file.

A converter raises `RowError(field, message)`; the caller knows the file and line (or hub split and row)
and turns it into a located `InputError`.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, Sequence

from pydantic import ValidationError

from rdistill.records import Problem

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class RowError(ValueError):
    """One upstream row is unusable; `field` names the upstream field at fault."""

    def __init__(self, field: str | None, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


def text_field(row: Mapping[str, Any], name: str) -> str:
    """A required, non-blank string field."""
    if name not in row or row[name] is None:
        raise RowError(name, "missing required field")
    value = row[name]
    if not isinstance(value, str):
        raise RowError(name, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise RowError(name, "is empty")
    return value


def list_field(row: Mapping[str, Any], name: str) -> list[Any]:
    if name not in row or row[name] is None:
        raise RowError(name, "missing required field")
    value = row[name]
    if not isinstance(value, (list, tuple)):
        raise RowError(name, f"expected a list, got {type(value).__name__}")
    return list(value)


def number_text(value: Any, field: str) -> str:
    """Canonical text of a numeric gold answer: no thousands separators, no trailing `.0`.

    Upstream files write the same number as `1,450,000`, `39.0` or `5`; graders compare text, so one
    spelling per number matters.
    """
    if isinstance(value, bool):
        raise RowError(field, f"expected a number, got a boolean ({value})")
    if isinstance(value, (int, float)):
        text = repr(value)  # shortest round-trip form, so 0.1 stays 0.1
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
    else:
        raise RowError(field, f"expected a number, got {type(value).__name__}")
    if not _NUMBER.fullmatch(text):
        raise RowError(field, f"not a number: {value!r}")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise RowError(field, f"not a number: {value!r}") from None
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def lettered_question(stem: str, texts: Sequence[str]) -> str:
    """The stem followed by its options as `(A) ... (B) ...`, so a model sees what to choose from."""
    options = " ".join(f"({LETTERS[i]}) {text}" for i, text in enumerate(texts))
    return f"{stem.strip()}\nAnswer Choices: {options}"


def choice_fields(stem: str, texts: Sequence[str], labels: Sequence[str], answer_key: str,
                  *, key_field: str = "answerKey") -> dict[str, Any]:
    """Question, gold letter and choices for a multiple-choice row.

    Options are re-lettered A, B, C... by position: some sources label them 1-4 instead, and a grader
    should see one scheme. The upstream label of the gold answer is returned too, for metadata.
    """
    if len(texts) != len(labels):
        raise RowError("choices", f"{len(texts)} choice texts but {len(labels)} labels")
    if not 2 <= len(texts) <= len(LETTERS):
        raise RowError("choices", f"expected 2 to {len(LETTERS)} choices, got {len(texts)}")
    if any(not isinstance(t, str) or not t.strip() for t in texts):
        raise RowError("choices", "a choice text is empty or not a string")
    labels = [str(label).strip() for label in labels]
    key = str(answer_key).strip()
    if key not in labels:
        raise RowError(key_field, f"{answer_key!r} is not one of the choice labels {labels}")
    position = labels.index(key)
    return {
        "question": lettered_question(stem, texts),
        "answer": LETTERS[position],
        "choices": [t.strip() for t in texts],
        "upstream_label": key,
    }


def build_problem(**fields: Any) -> Problem:
    """Validate a Problem; a schema failure becomes a RowError naming the Problem field."""
    try:
        return Problem(**fields)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or None
        raise RowError(field, err.get("msg", "invalid")) from None
