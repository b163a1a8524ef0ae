"""Where benchmark rows come from (a local upstream file or the Hugging Face hub) and how they become Problems.

Both origins feed the same per-benchmark `row_to_problem`, so testing a local file also tests the
conversion that hub rows go through. Every failure names the file and line (JSONL) or record index
(JSON arrays, hub rows), plus the field.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from rdistill.data.benchmarks._fields import RowError
from rdistill.errors import InputError, UnknownNameError
from rdistill.jsonl import iter_json_lines
from rdistill.records import Problem

log = logging.getLogger(__name__)

RowConverter = Callable[[Mapping[str, Any], int, str], Problem]
RowAdapter = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class SplitSource:
    """One split of a benchmark: the hub split(s) to concatenate and the local file names to look for."""

    hub_splits: tuple[str, ...]
    files: tuple[str, ...]


@dataclass(frozen=True)
class BenchmarkSource:
    name: str
    hub_id: str
    hub_config: str | None
    splits: Mapping[str, SplitSource]
    row_to_problem: RowConverter
    # Turns a row of the local upstream file into the hub's row shape; None where the two are the same.
    local_row_to_hub_row: RowAdapter | None = None
    # Split names that mean another split, e.g. CommonsenseQA "test" -> "validation" (its test labels are hidden).
    split_aliases: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RowPlace:
    """Where one row sits: `index` is its 0-based position among records, `line` its JSONL line."""

    origin: str
    index: int
    line: int | None = None

    def error(self, e: RowError) -> InputError:
        if self.line is not None:
            return InputError(e.message, path=self.origin, line=self.line, field=e.field)
        return InputError(f"record [{self.index}]: {e.message}", path=self.origin, field=e.field)


def check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InputError(f"limit must be a non-negative integer, got {limit!r}", field="limit")


def resolve_split(source: BenchmarkSource, split: str) -> str:
    wanted = source.split_aliases.get(split, split)
    if wanted not in source.splits:
        raise UnknownNameError(f"{source.name} split", split, [*source.splits, *source.split_aliases])
    if wanted != split:
        log.info("%s: split %r is read as %r", source.name, split, wanted)
    return wanted


def find_split_file(path: str | Path, split: str, candidates: tuple[str, ...]) -> Path:
    """`path` itself if it is a file; inside a directory, the first candidate file name that exists."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or directory", path=path)
    if path.is_file():
        return path
    for name in candidates:
        if (path / name).is_file():
            return path / name
    raise InputError(f"no file for split {split!r} here; expected one of: {', '.join(candidates)}", path=path)


def iter_local_rows(path: Path) -> Iterator[tuple[RowPlace, dict[str, Any]]]:
    """Rows of a JSONL file or of a JSON array file, told apart by content since names vary upstream."""
    if _starts_with_array(path):
        yield from _iter_json_array(path)
        return
    for index, (line, row) in enumerate(iter_json_lines(path)):
        yield RowPlace(str(path), index, line), row


def _starts_with_array(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


def _iter_json_array(path: Path) -> Iterator[tuple[RowPlace, dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8 (byte {e.start})", path=path) from None
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=e.lineno) from None
    if not isinstance(data, list):
        raise InputError(f"expected a JSON array of records, got {type(data).__name__}", path=path)
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise InputError(f"record [{index}]: expected a JSON object, got {type(row).__name__}", path=path)
        yield RowPlace(str(path), index), row


def iter_hub_rows(hub_id: str, config: str | None, hub_splits: tuple[str, ...]) -> Iterator[tuple[RowPlace, dict[str, Any]]]:
    """Rows of one or more hub splits, in order; indices run on across splits so ids stay unique."""
    try:
        import datasets  # heavy: only needed by users who read from the hub
    except ImportError:
        raise InputError(f"reading {hub_id} from the Hugging Face hub needs the 'datasets' package "
                         "(pip install 'rdistill[hf-data]'), or pass path= to a local copy") from None
    index = 0
    for hub_split in hub_splits:
        origin = f"hf://datasets/{hub_id}" + (f" [{config}]" if config else "") + f" split {hub_split}"
        args = (hub_id, config) if config else (hub_id,)
        try:
            dataset = datasets.load_dataset(*args, split=hub_split)
        # datasets raises many unrelated types (network, auth, missing config); all mean "not loadable here".
        except Exception as e:
            raise InputError(f"could not load from the Hugging Face hub ({type(e).__name__}: {e}); "
                             "offline, pass path= to a local copy in the upstream format",
                             path=origin) from None
        for row in dataset:
            yield RowPlace(origin, index), dict(row)
            index += 1


def convert_rows(rows: Iterable[tuple[RowPlace, Mapping[str, Any]]], converter: RowConverter, split: str,
                 *, limit: int | None = None, adapter: RowAdapter | None = None) -> list[Problem]:
    problems = []
    for place, row in islice(rows, limit):
        try:
            hub_row = adapter(row) if adapter else row
            problems.append(converter(hub_row, place.index, split))
        except RowError as e:
            raise place.error(e) from None
    return problems


def load_source(source: BenchmarkSource, split: str, path: str | Path | None, limit: int | None) -> list[Problem]:
    """The standard loader: a local upstream file when `path` is given, else the hub."""
    check_limit(limit)
    split = resolve_split(source, split)
    spec = source.splits[split]
    if path is not None:
        file = find_split_file(path, split, spec.files)
        problems = convert_rows(iter_local_rows(file), source.row_to_problem, split,
                                limit=limit, adapter=source.local_row_to_hub_row)
        origin = str(file)
    else:
        rows = iter_hub_rows(source.hub_id, source.hub_config, spec.hub_splits)
        problems = convert_rows(rows, source.row_to_problem, split, limit=limit)
        origin = f"hf://datasets/{source.hub_id}"
    log.info("loaded %d %s problems (split %s) from %s", len(problems), source.name, split, origin)
    return problems
