"""MultiArith (Roy & Roth 2015): 600 multi-step arithmetic word problems.

MultiArith has no split of its own; "test" is all 600 problems, as CoT papers report them.
- Local: `MultiArith.json` as distributed with Zero-shot-CoT, a JSON array of `iIndex`, `sQuestion`,
  `lEquations`, `lSolutions` (floats; the gold is the first), `lAlignments`.
- Hub: `ChilleD/MultiArith` has rows `question`, `final_ans` cut into "train" (420) and "test" (180); both
  are read and joined so that the hub gives the same 600 problems as the local file.
Local rows are mapped onto the hub's shape first, so both go through `row_to_problem`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from rdistill.data.benchmarks._fields import RowError, build_problem, list_field, number_text, text_field
from rdistill.data.benchmarks._source import BenchmarkSource, SplitSource, load_source
from rdistill.records import Problem, stable_id

log = logging.getLogger(__name__)

NAME = "multiarith"
HUB_ID = "ChilleD/MultiArith"
PROBLEM_COUNT = 600


def row_to_problem(row: Mapping[str, Any], index: int, split: str) -> Problem:
    question = " ".join(text_field(row, "question").split())  # upstream pads with spaces and newlines
    if "final_ans" not in row:
        raise RowError("final_ans", "missing required field")
    upstream_index = row.get("index")
    # The hub copy has no ids; a hash of the text keeps ids stable whatever order its splits come in.
    suffix = f"{upstream_index:03d}" if isinstance(upstream_index, int) else stable_id(question)
    return build_problem(
        id=f"{NAME}-{suffix}",
        question=question,
        answer=number_text(row["final_ans"], "final_ans"),
        answer_type="numeric",
        domain="math",
        source=NAME,
        split=split,
        metadata={"equations": row.get("equations") or []},
    )


def local_row_to_hub_row(row: Mapping[str, Any]) -> dict[str, Any]:
    solutions = list_field(row, "lSolutions")
    if not solutions:
        raise RowError("lSolutions", "is empty")
    index = row.get("iIndex")
    if not isinstance(index, int) or isinstance(index, bool):
        raise RowError("iIndex", f"expected an integer, got {index!r}")
    return {"question": text_field(row, "sQuestion"), "final_ans": solutions[0], "index": index,
            "equations": row.get("lEquations")}


SOURCE = BenchmarkSource(
    name=NAME,
    hub_id=HUB_ID,
    hub_config=None,
    splits={"test": SplitSource(hub_splits=("train", "test"), files=("MultiArith.json",))},
    row_to_problem=row_to_problem,
    local_row_to_hub_row=local_row_to_hub_row,
)


def load(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[Problem]:
    problems = load_source(SOURCE, split, path, limit)
    if path is None and limit is None and len(problems) != PROBLEM_COUNT:
        log.warning("%s on the hub gave %d problems, not the %d of the published set; the copy may have changed",
                    HUB_ID, len(problems), PROBLEM_COUNT)
    return problems
