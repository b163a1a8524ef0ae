"""Score free-form predictions against gold answers, line by line, keeping every other field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from rdistill.answers import check
from rdistill.errors import InputError
from rdistill.jsonl import iter_json_lines, write_records
from rdistill.records import ANSWER_TYPES


@dataclass
class ScoreSummary:
    total: int = 0
    correct: int = 0
    unanswered: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def _field(obj: dict[str, Any], name: str, path: Path, line: int, *, required: bool) -> Any:
    if name not in obj or obj[name] is None:
        if required:
            raise InputError("missing required field", path=path, line=line, field=name)
        return None
    return obj[name]


def _validated(obj: dict[str, Any], path: Path, line: int) -> tuple[str, str, str | None, list[str] | None]:
    prediction = _field(obj, "prediction", path, line, required=True)
    if not isinstance(prediction, str):
        raise InputError(f"expected a string, got {type(prediction).__name__}", path=path, line=line, field="prediction")
    answer = _field(obj, "answer", path, line, required=True)
    if isinstance(answer, bool):
        answer = "yes" if answer else "no"
    elif isinstance(answer, (int, float)):
        answer = str(int(answer)) if float(answer).is_integer() else str(answer)
    elif not isinstance(answer, str):
        raise InputError(f"expected a string or number, got {type(answer).__name__}", path=path, line=line, field="answer")
    answer_type = _field(obj, "answer_type", path, line, required=False)
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        raise InputError(f"must be one of {', '.join(ANSWER_TYPES)}, got {answer_type!r}", path=path, line=line,
                         field="answer_type")
    choices = _field(obj, "choices", path, line, required=False)
    if choices is not None and not (isinstance(choices, list) and all(isinstance(c, str) for c in choices)):
        raise InputError("expected a list of strings", path=path, line=line, field="choices")
    return prediction, answer, answer_type, choices


def score_lines(path: str | Path, summary: ScoreSummary) -> Iterator[dict[str, Any]]:
    path = Path(path)
    for line, obj in iter_json_lines(path):
        prediction, answer, answer_type, choices = _validated(obj, path, line)
        verdict = check(prediction, answer, answer_type, choices)
        summary.total += 1
        summary.correct += int(verdict.correct)
        summary.unanswered += int(verdict.extracted is None)
        yield {**obj, "extracted": verdict.extracted, "correct": verdict.correct}


def score_file(path: str | Path, output: str | Path) -> ScoreSummary:
    """Score every line of `path` into `output` (written atomically: nothing is left on error)."""
    summary = ScoreSummary()
    write_records(output, score_lines(path, summary))
    return summary
