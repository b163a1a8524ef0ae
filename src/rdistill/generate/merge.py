"""`rdistill merge`: join the trace files (and response caches) of several shards or runs into one.

Traces are deduplicated by `Trace.key` (problem, strategy, sample). Two copies that differ only in `usage`
(one was a cache hit) are the same trace; copies that differ in anything else conflict, and the first one
(in the order the files were given) is kept, with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from rdistill.errors import InputError
from rdistill.generate.store import read_traces_tolerant
from rdistill.jsonl import write_records
from rdistill.records import Trace

log = logging.getLogger(__name__)

_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass
class MergeSummary:
    inputs: int = 0
    read: int = 0
    written: int = 0
    duplicates: int = 0  # identical copies dropped
    conflicts: list[tuple[str, str, int]] = field(default_factory=list)  # keys whose copies differed
    cache_entries_added: int = 0


def is_sqlite_file(path: str | Path) -> bool:
    try:
        with Path(path).open("rb") as fh:
            return fh.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False


def merge_traces(output: str | Path, inputs: list[str | Path]) -> MergeSummary:
    """Write the union of `inputs` to `output` (atomically; `output` may also be one of the inputs)."""
    summary = MergeSummary(inputs=len(inputs))
    kept: dict[tuple[str, str, int], Trace] = {}
    for path in inputs:
        for trace in read_traces_tolerant(path):
            summary.read += 1
            first = kept.get(trace.key)
            if first is None:
                kept[trace.key] = trace
            elif _content(first) == _content(trace):
                summary.duplicates += 1
            else:
                summary.conflicts.append(trace.key)
                log.warning("conflicting copies of %s (problem, strategy, sample): kept the first, from an earlier "
                            "file; dropped the one in %s", trace.key, path)
    summary.written = write_records(output, kept.values())
    return summary


def merge_caches(into: str | Path, caches: list[str | Path]) -> int:
    """Copy every entry of `caches` into the cache file `into`; returns how many entries were new."""
    from rdistill.teachers.cache import ResponseCache

    for path in caches:
        if not Path(path).is_file():
            raise InputError("no such cache file", path=path)
        if not is_sqlite_file(path):
            raise InputError("not a response cache (expected an SQLite file)", path=path)
    target = ResponseCache(into)
    try:
        return sum(target.merge_from(path) for path in caches)
    finally:
        target.close()


def _content(trace: Trace) -> dict:
    data = trace.to_json_dict()
    data.pop("usage", None)
    return data
