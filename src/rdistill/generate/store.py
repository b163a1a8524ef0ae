"""Reading a trace file that a killed run may have left behind, for resuming and merging.

The only damage a crash can do to an `Appender` file is a torn last line (the write was cut short): it is
skipped here, with a warning, and the `Appender` cuts it off when the run reopens the file. Any other bad line
is real damage or a wrong file, and fails with its line number.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import ValidationError

from rdistill.errors import InputError
from rdistill.jsonl import validation_error
from rdistill.records import Trace

log = logging.getLogger(__name__)


def read_traces_tolerant(path: str | Path) -> list[Trace]:
    """Every trace in `path` (none if it does not exist), skipping a torn final line."""
    path = Path(path)
    if not path.exists():
        return []
    if path.is_dir():
        raise InputError("is a directory, expected a JSONL trace file", path=path)
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop() if lines else b""  # after the last newline: empty, or a line cut short
    traces = [_parse(raw, path, lineno) for lineno, raw in enumerate(lines, start=1) if raw.strip()]
    if torn.strip():
        try:
            traces.append(Trace.model_validate(json.loads(torn.decode("utf-8"))))
        except (UnicodeDecodeError, json.JSONDecodeError, ValidationError):
            log.warning("%s: skipping a torn last line (%d bytes) left by an interrupted run", path, len(torn))
    return traces


def _parse(raw: bytes, path: Path, lineno: int) -> Trace:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8 (byte {e.start})", path=path, line=lineno) from None
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=lineno) from None
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}", path=path, line=lineno)
    try:
        return Trace.model_validate(obj)
    except ValidationError as e:
        raise validation_error(e, path, lineno) from None


def existing_by_problem(traces: list[Trace], strategy: str) -> dict[str, dict[int, Trace]]:
    """problem_id -> sample_index -> the first trace written for it under `strategy`."""
    found: dict[str, dict[int, Trace]] = {}
    for trace in traces:
        if trace.strategy == strategy:
            found.setdefault(trace.problem_id, {}).setdefault(trace.sample_index, trace)
    return found
