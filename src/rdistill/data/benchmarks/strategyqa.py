"""StrategyQA (Geva et al. 2021): yes/no questions whose reasoning steps are implicit.

The official test labels are not public, so every copy splits the labelled 2,290 questions itself:
- Hub: `ChilleD/StrategyQA`, splits "train" / "test". Rows are assumed to keep the authors' fields
  (`qid`, `question`, `answer` as a boolean, optionally `facts`, `decomposition`, `term`, `description`);
  only `question` and `answer` are required, and a row without `qid` gets an id from the question text.
- Local: the authors' code repo (eladsegal/strategyqa) `train.json` / `dev.json`, a 90/10 split of the same
  2,290 questions. Here "test" reads `dev.json`. The two copies' test splits are different subsets, so
  scores from the hub and from local files are not directly comparable.
Gold is "yes"/"no". The annotated `facts` become the gold `solution`: they are the evidence a
reasoning chain needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from rdistill.data.benchmarks._fields import RowError, build_problem, text_field
from rdistill.data.benchmarks._source import BenchmarkSource, SplitSource, load_source
from rdistill.records import Problem, stable_id

NAME = "strategyqa"
HUB_ID = "ChilleD/StrategyQA"
_BOOLEAN_TEXT = {"true": "yes", "yes": "yes", "false": "no", "no": "no"}


def _yes_no(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value.strip().lower() in _BOOLEAN_TEXT:
        return _BOOLEAN_TEXT[value.strip().lower()]
    raise RowError("answer", f"expected a boolean, got {value!r}")


def _string_list(row: Mapping[str, Any], name: str) -> list[str]:
    value = row.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RowError(name, "expected a list of strings")
    return value


def row_to_problem(row: Mapping[str, Any], index: int, split: str) -> Problem:
    question = text_field(row, "question").strip()
    if "answer" not in row:
        raise RowError("answer", "missing required field")
    qid = row.get("qid")
    upstream_id = qid.strip() if isinstance(qid, str) and qid.strip() else stable_id(question)
    facts = _string_list(row, "facts")
    return build_problem(
        id=f"{NAME}-{upstream_id}",
        question=question,
        answer=_yes_no(row["answer"]),
        answer_type="boolean",
        solution=" ".join(f.strip() for f in facts) or None,
        domain="commonsense",
        source=NAME,
        split=split,
        metadata={"term": row.get("term"), "description": row.get("description"),
                  "decomposition": _string_list(row, "decomposition")},
    )


SOURCE = BenchmarkSource(
    name=NAME,
    hub_id=HUB_ID,
    hub_config=None,
    splits={
        "train": SplitSource(hub_splits=("train",), files=("train.json",)),
        "test": SplitSource(hub_splits=("test",), files=("dev.json",)),
    },
    row_to_problem=row_to_problem,
    split_aliases={"dev": "test"},
)


def load(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[Problem]:
    return load_source(SOURCE, split, path, limit)
