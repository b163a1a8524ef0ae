"""ARC-Challenge (Clark et al. 2018): grade-school science questions with 3-5 options.

Hub: `allenai/ai2_arc`, config "ARC-Challenge"; rows `id`, `question` (text), `choices`
{`text`: [...], `label`: [...]}, `answerKey`. Labels are mostly A-E, but 22 NYSEDREGENTS test items use
1-4; options are re-lettered A.. by position either way, and the upstream label is kept in metadata.

Local, two upstream formats (a directory is searched for them in this order):
- AI2's own JSONL (`ARC-Challenge-Test.jsonl`, `-Dev`, `-Train`): `id`, `question` {`stem`, `choices`:
  [{`text`, `label`}]}, `answerKey`.
- For the test split, LLM-Adapters' complete re-formatted copy `llm-adapters/test.json` (no ids, options
  renumbered answer1..answerN, gold `answer` = "answerK") together with AI2's official key file
  `ai2_answer_keys/question-answers.jsonl` (`id`, `answerKey`), which lists the same questions in the same
  order. Ids and keys come from the key file, matched by position; every record's own `answer` must
  agree with its key, which catches a key file that is out of order or belongs to another copy.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Iterator, Mapping

from rdistill.data.benchmarks._fields import LETTERS, RowError, build_problem, choice_fields, text_field
from rdistill.data.benchmarks._source import (BenchmarkSource, RowPlace, SplitSource, check_limit, convert_rows,
                                              find_split_file, iter_local_rows, load_source, resolve_split)
from rdistill.errors import InputError
from rdistill.jsonl import iter_json_lines
from rdistill.records import Problem

log = logging.getLogger(__name__)

NAME = "arc_challenge"
HUB_ID = "allenai/ai2_arc"
HUB_CONFIG = "ARC-Challenge"
ADAPTERS_FILE = "llm-adapters/test.json"
KEYS_FILE = "ai2_answer_keys/question-answers.jsonl"
_ADAPTERS_INSTRUCTION = re.compile(
    r"Please choose the correct answer to the question: (?P<stem>.*?)\n\n(?P<options>Answer1: .*)"
    r"\n\nAnswer format: (?P<format>\S+)\s*", re.DOTALL)
_ADAPTERS_OPTION = re.compile(r" ?Answer(\d+): ")


def row_to_problem(row: Mapping[str, Any], index: int, split: str) -> Problem:
    ident = text_field(row, "id")
    stem = text_field(row, "question")
    choices = row.get("choices")
    if not isinstance(choices, Mapping) or not isinstance(choices.get("text"), list) \
            or not isinstance(choices.get("label"), list):
        raise RowError("choices", "expected {'text': [...], 'label': [...]}")
    fields = choice_fields(stem, choices["text"], choices["label"], text_field(row, "answerKey"))
    return build_problem(
        id=f"{NAME}-{ident.strip()}",
        question=fields["question"],
        answer=fields["answer"],
        answer_type="choice",
        choices=fields["choices"],
        domain="science",
        source=NAME,
        split=split,
        metadata={"upstream_id": ident.strip(), "upstream_label": fields["upstream_label"],
                  "upstream_labels": [str(label).strip() for label in choices["label"]]},
    )


def ai2_row_to_hub_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """AI2's nested JSONL row -> the hub's flat row."""
    question = row.get("question")
    if not isinstance(question, Mapping):
        raise RowError("question", "expected an object with 'stem' and 'choices'")
    options = question.get("choices")
    if not isinstance(options, list) or not all(isinstance(o, Mapping) for o in options):
        raise RowError("question.choices", "expected a list of {'text', 'label'} objects")
    return {
        "id": row.get("id"),
        "question": _stem(question),
        "choices": {"text": [o.get("text") for o in options], "label": [o.get("label") for o in options]},
        "answerKey": row.get("answerKey"),
    }


def _stem(question: Mapping[str, Any]) -> str:
    stem = question.get("stem")
    if not isinstance(stem, str) or not stem.strip():
        raise RowError("question.stem", "missing or empty")
    return stem


def adapters_row_to_hub_row(row: Mapping[str, Any], key: Mapping[str, Any]) -> dict[str, Any]:
    """An LLM-Adapters record plus its AI2 key row -> the hub's flat row."""
    match = _ADAPTERS_INSTRUCTION.fullmatch(text_field(row, "instruction"))
    if not match:
        raise RowError("instruction", "not in LLM-Adapters' 'Please choose the correct answer...' format")
    parts = _ADAPTERS_OPTION.split(match["options"])
    numbers, texts = parts[1::2], [t.strip() for t in parts[2::2]]
    if numbers != [str(n) for n in range(1, len(texts) + 1)]:
        raise RowError("instruction", f"options are not numbered Answer1..AnswerN: {numbers}")
    if match["format"].count("/") + 1 != len(texts):
        raise RowError("instruction", f"{len(texts)} options but answer format {match['format']!r}")
    position = _adapters_answer_position(row)
    key_id = text_field(key, "id").strip()
    key_label = text_field(key, "answerKey").strip()
    key_position = _key_position(key_label)
    if key_position != position:
        raise RowError("answer", f"answer{position + 1} disagrees with the official key {key_label!r} "
                                 f"(id {key_id!r}): the key file is not in this file's order")
    labels = [str(n) for n in range(1, len(texts) + 1)] if key_label.isdigit() else list(LETTERS[:len(texts)])
    return {"id": key_id, "question": match["stem"], "choices": {"text": texts, "label": labels},
            "answerKey": key_label}


def _adapters_answer_position(row: Mapping[str, Any]) -> int:
    match = re.fullmatch(r"answer(\d+)", text_field(row, "answer").strip())
    if not match or int(match.group(1)) < 1:
        raise RowError("answer", f"expected 'answerK', got {row.get('answer')!r}")
    return int(match.group(1)) - 1


def _key_position(label: str) -> int:
    # AI2 keys are A-E, or 1-4 for the NYSEDREGENTS items; either way they count options in order.
    if label.isdigit():
        return int(label) - 1
    if len(label) == 1 and label in LETTERS:
        return LETTERS.index(label)
    raise RowError("answerKey", f"expected a letter or a digit, got {label!r}")


def _keys_beside(adapters_file: Path) -> Path:
    for candidate in (adapters_file.parent.parent / KEYS_FILE, adapters_file.parent / Path(KEYS_FILE).name):
        if candidate.is_file():
            return candidate
    raise InputError(f"LLM-Adapters' ARC copy has no answer ids; AI2's key file {Path(KEYS_FILE).name} "
                     f"was not found beside it (looked for {adapters_file.parent.parent / KEYS_FILE})",
                     path=adapters_file)


def _iter_adapters_rows(adapters_file: Path, keys_file: Path) -> Iterator[tuple[RowPlace, dict[str, Any]]]:
    records = list(iter_local_rows(adapters_file))
    keys = list(iter_json_lines(keys_file))
    if len(keys) != len(records):
        raise InputError(f"has {len(keys)} answer keys but {adapters_file} has {len(records)} questions; "
                         "they must list the same questions in the same order", path=keys_file)
    for (place, row), (key_line, key) in zip(records, keys):
        try:
            yield place, adapters_row_to_hub_row(row, key)
        except RowError as e:
            if e.field in ("id", "answerKey"):  # the fault is in the key file: point there
                raise InputError(e.message, path=keys_file, line=key_line, field=e.field) from None
            raise place.error(e) from None


def _ai2_file_names(split: str) -> tuple[str, ...]:
    stem = {"train": "Train", "validation": "Dev", "test": "Test"}[split]
    return (f"ARC-Challenge-{stem}.jsonl", f"ARC-Challenge/ARC-Challenge-{stem}.jsonl")


SOURCE = BenchmarkSource(
    name=NAME,
    hub_id=HUB_ID,
    hub_config=HUB_CONFIG,
    splits={
        "train": SplitSource(hub_splits=("train",), files=_ai2_file_names("train")),
        "validation": SplitSource(hub_splits=("validation",), files=_ai2_file_names("validation")),
        "test": SplitSource(hub_splits=("test",), files=(*_ai2_file_names("test"), ADAPTERS_FILE)),
    },
    row_to_problem=row_to_problem,
    local_row_to_hub_row=ai2_row_to_hub_row,
    split_aliases={"dev": "validation"},
)


def load(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[Problem]:
    if path is None:
        return load_source(SOURCE, split, path, limit)
    check_limit(limit)
    split = resolve_split(SOURCE, split)
    file = find_split_file(path, split, SOURCE.splits[split].files)
    if file.suffix == ".json":  # LLM-Adapters' array; AI2's own files are JSONL
        keys_file = _keys_beside(file)
        problems = convert_rows(_iter_adapters_rows(file, keys_file), row_to_problem, split, limit=limit)
        log.info("loaded %d %s problems (split %s) from %s with keys from %s",
                 len(problems), NAME, split, file, keys_file)
        return problems
    return load_source(SOURCE, split, file, limit)
