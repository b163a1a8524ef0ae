"""MATH-500: the 500-problem test subset of Hendrycks MATH chosen in "Let's Verify Step by Step".

Hub: `HuggingFaceH4/MATH-500` (split "test"). Local: `test.jsonl` from openai/prm800k
(`prm800k/math_splits/test.jsonl`), same row shape as the hub's: `problem`, `solution`, `answer`,
`subject`, `level`, `unique_id`. Gold is the `answer` field; rows without one fall back to the last
`\\boxed{...}` in the solution (the convention of the full MATH dataset).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from rdistill.data.benchmarks._fields import RowError, build_problem, text_field
from rdistill.data.benchmarks._source import BenchmarkSource, SplitSource, load_source
from rdistill.records import Problem

NAME = "math500"
HUB_ID = "HuggingFaceH4/MATH-500"
_BOX_COMMANDS = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), with nested braces balanced."""
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for pos in range(brace, len(text)):
        if text[pos] == "{":
            depth += 1
        elif text[pos] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1:pos].strip()
    return None


def _level(row: Mapping[str, Any]) -> int | None:
    # MATH-500 stores 1..5; the original MATH files write "Level 3" (and "Level ?" for a few).
    value = row.get("level")
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.fullmatch(r"\s*(?:Level\s*)?(\d+)\s*", str(value))
    return int(match.group(1)) if match else None


def row_to_problem(row: Mapping[str, Any], index: int, split: str) -> Problem:
    problem = text_field(row, "problem")
    solution = row.get("solution") if isinstance(row.get("solution"), str) else None
    answer = row.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        answer = last_boxed(solution or "")
        if not answer:
            raise RowError("answer", "no answer field and no \\boxed{} answer in the solution")
    unique_id = row.get("unique_id")
    if isinstance(unique_id, str) and unique_id.strip():
        # "test/precalculus/807.json" -> "math500-test-precalculus-807"
        ident = f"{NAME}-" + unique_id.strip().removesuffix(".json").replace("/", "-")
    else:
        ident = f"{NAME}-{split}-{index + 1:04d}"
    level = _level(row)
    return build_problem(
        id=ident,
        question=problem.strip(),
        answer=answer.strip(),
        answer_type="math",
        solution=solution,
        domain="math",
        difficulty=level,
        source=NAME,
        split=split,
        metadata={"subject": row.get("subject"), "level": level, "unique_id": unique_id},
    )


SOURCE = BenchmarkSource(
    name=NAME,
    hub_id=HUB_ID,
    hub_config=None,
    splits={"test": SplitSource(hub_splits=("test",), files=("test.jsonl",))},
    row_to_problem=row_to_problem,
)


def load(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[Problem]:
    return load_source(SOURCE, split, path, limit)
