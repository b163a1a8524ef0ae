"""SVAMP (Patel et al. 2021): 1,000 one-unknown arithmetic word problems with varied structure.

SVAMP is a challenge set with no train/test split of its own; "test" is all 1,000 problems, as CoT
papers report them.
- Local: the authors' `SVAMP.json` (arkilpatel/SVAMP), a JSON array of `ID`, `Body`, `Question`,
  `Equation`, `Answer` (a float such as 5.0), `Type`.
- Hub: `ChilleD/SVAMP` keeps those fields but cuts the set into "train" (700) and "test" (300); both are
  read and joined so that the hub gives the same 1,000 problems as the local file.
The question shown to a model is `Body` + " " + `Question` (the body ends mid-sentence in some rows).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from rdistill.data.benchmarks._fields import RowError, build_problem, number_text, text_field
from rdistill.data.benchmarks._source import BenchmarkSource, SplitSource, load_source
from rdistill.records import Problem

log = logging.getLogger(__name__)

NAME = "svamp"
HUB_ID = "ChilleD/SVAMP"
PROBLEM_COUNT = 1000


def row_to_problem(row: Mapping[str, Any], index: int, split: str) -> Problem:
    ident = row.get("ID")
    upstream_id = ident.strip() if isinstance(ident, str) and ident.strip() else f"{index + 1:04d}"
    if "Answer" not in row:
        raise RowError("Answer", "missing required field")
    return build_problem(
        id=f"{NAME}-{upstream_id}",
        question=f"{text_field(row, 'Body').strip()} {text_field(row, 'Question').strip()}",
        answer=number_text(row["Answer"], "Answer"),
        answer_type="numeric",
        domain="math",
        source=NAME,
        split=split,
        metadata={"equation": row.get("Equation"), "type": row.get("Type")},
    )


SOURCE = BenchmarkSource(
    name=NAME,
    hub_id=HUB_ID,
    hub_config=None,
    splits={"test": SplitSource(hub_splits=("train", "test"), files=("SVAMP.json",))},
    row_to_problem=row_to_problem,
)


def load(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[Problem]:
    problems = load_source(SOURCE, split, path, limit)
    if path is None and limit is None and len(problems) != PROBLEM_COUNT:
        log.warning("%s on the hub gave %d problems, not the %d of the published set; the copy may have changed",
                    HUB_ID, len(problems), PROBLEM_COUNT)
    return problems
