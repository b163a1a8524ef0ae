"""GSM8K (Cobbe et al. 2021): grade-school math word problems with worked solutions.

Hub: `openai/gsm8k`, config "main". Local: the upstream `train.jsonl` / `test.jsonl` from
openai/grade-school-math, whose rows have the same shape as the hub's: `question`, `answer`.
The `answer` holds the worked solution and ends with a line `#### N`; N is the gold answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from rdistill.data.benchmarks._fields import RowError, build_problem, number_text, text_field
from rdistill.data.benchmarks._source import BenchmarkSource, SplitSource, load_source
from rdistill.records import Problem

NAME = "gsm8k"
HUB_ID = "openai/gsm8k"
HUB_CONFIG = "main"
FINAL_ANSWER_MARK = "####"


def row_to_problem(row: Mapping[str, Any], index: int, split: str) -> Problem:
    question = text_field(row, "question")
    worked = text_field(row, "answer")
    steps, mark, final = worked.rpartition(FINAL_ANSWER_MARK)
    if not mark:
        raise RowError("answer", f"no '{FINAL_ANSWER_MARK} N' final-answer line")
    return build_problem(
        # 1-based like the file's line numbers, so "gsm8k-test-0001" is line 1 of test.jsonl.
        id=f"{NAME}-{split}-{index + 1:04d}",
        question=question.strip(),
        answer=number_text(final, "answer"),
        answer_type="numeric",
        # The steps keep their <<a*b=c>> calculator annotations: whether to strip them is the consumer's call.
        solution=steps.strip() or None,
        domain="math",
        source=NAME,
        split=split,
    )


SOURCE = BenchmarkSource(
    name=NAME,
    hub_id=HUB_ID,
    hub_config=HUB_CONFIG,
    splits={
        "train": SplitSource(hub_splits=("train",), files=("train.jsonl",)),
        "test": SplitSource(hub_splits=("test",), files=("test.jsonl",)),
    },
    row_to_problem=row_to_problem,
)


def load(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[Problem]:
    return load_source(SOURCE, split, path, limit)
