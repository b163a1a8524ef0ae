"""CommonsenseQA (Talmor et al. 2019): 5-option commonsense questions.

Hub: `tau/commonsense_qa`; rows `id`, `question` (text), `question_concept`, `choices` {`label`, `text`},
`answerKey`. Local: the official JSONL (`dev_rand_split.jsonl`, `train_rand_split.jsonl`, as shipped by
the authors and copied by STaR): `id`, `question` {`stem`, `question_concept`, `choices`: [{`label`,
`text`}]}, `answerKey`; local rows are mapped onto the hub's shape first.

The test split's answers are not public, so "test" reads the validation split (1,221 questions), as
lm-evaluation-harness and the CoT papers do; the records say split "validation".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from rdistill.data.benchmarks._fields import RowError, build_problem, choice_fields, text_field
from rdistill.data.benchmarks._source import BenchmarkSource, SplitSource, load_source
from rdistill.records import Problem

NAME = "commonsenseqa"
HUB_ID = "tau/commonsense_qa"


def row_to_problem(row: Mapping[str, Any], index: int, split: str) -> Problem:
    ident = text_field(row, "id").strip()
    choices = row.get("choices")
    if not isinstance(choices, Mapping) or not isinstance(choices.get("text"), list) \
            or not isinstance(choices.get("label"), list):
        raise RowError("choices", "expected {'label': [...], 'text': [...]}")
    fields = choice_fields(text_field(row, "question"), choices["text"], choices["label"],
                           text_field(row, "answerKey"))
    return build_problem(
        id=f"{NAME}-{ident}",
        question=fields["question"],
        answer=fields["answer"],
        answer_type="choice",
        choices=fields["choices"],
        domain="commonsense",
        source=NAME,
        split=split,
        metadata={"upstream_id": ident, "question_concept": row.get("question_concept")},
    )


def local_row_to_hub_row(row: Mapping[str, Any]) -> dict[str, Any]:
    question = row.get("question")
    if not isinstance(question, Mapping):
        raise RowError("question", "expected an object with 'stem' and 'choices'")
    options = question.get("choices")
    if not isinstance(options, list) or not all(isinstance(o, Mapping) for o in options):
        raise RowError("question.choices", "expected a list of {'label', 'text'} objects")
    return {
        "id": row.get("id"),
        "question": _stem(question),
        "question_concept": question.get("question_concept"),
        "choices": {"label": [o.get("label") for o in options], "text": [o.get("text") for o in options]},
        "answerKey": row.get("answerKey"),
    }


def _stem(question: Mapping[str, Any]) -> str:
    stem = question.get("stem")
    if not isinstance(stem, str) or not stem.strip():
        raise RowError("question.stem", "missing or empty")
    return stem


SOURCE = BenchmarkSource(
    name=NAME,
    hub_id=HUB_ID,
    hub_config=None,
    splits={
        "train": SplitSource(hub_splits=("train",), files=("train_rand_split.jsonl",)),
        "validation": SplitSource(hub_splits=("validation",), files=("dev_rand_split.jsonl",)),
    },
    row_to_problem=row_to_problem,
    local_row_to_hub_row=local_row_to_hub_row,
    split_aliases={"test": "validation", "dev": "validation"},
)


def load(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[Problem]:
    return load_source(SOURCE, split, path, limit)
