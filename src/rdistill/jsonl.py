"""JSONL that streams, validates with a located error, and is never left half-written.

- `read_records` streams a file and raises `InputError(path, line, field)` on the first bad line.
- `atomic_writer` writes to a temp file beside the target and renames it into place only on success.
- `Appender` appends with flush + fsync for resumable stages, and repairs a torn last line on open.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

from pydantic import BaseModel, ValidationError

from rdistill.errors import InputError

M = TypeVar("M", bound=BaseModel)


def iter_json_lines(path: str | Path, *, allow_empty: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line_number, object) for each non-blank line. Errors name file and line."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=path)
    if path.is_dir():
        raise InputError("is a directory, expected a JSONL file", path=path)
    seen = False
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"not valid UTF-8 (byte {e.start})", path=path, line=lineno) from None
            if lineno == 1 and text.startswith("\ufeff"):
                text = text[1:]
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=lineno) from None
            if not isinstance(obj, dict):
                raise InputError(f"expected a JSON object, got {type(obj).__name__}", path=path, line=lineno)
            seen = True
            yield lineno, obj
    if not seen and not allow_empty:
        raise InputError("file is empty: expected one JSON object per line", path=path)


def validation_error(e: ValidationError, path: str | Path, line: int) -> InputError:
    err = e.errors()[0]
    field = ".".join(str(p) for p in err.get("loc", ())) or None
    msg = err.get("msg", "invalid")
    if err.get("type") == "missing":
        msg = "missing required field"
    return InputError(msg, path=path, line=line, field=field)


def read_records(path: str | Path, model: type[M], *, allow_empty: bool = False) -> Iterator[M]:
    """Stream validated records; the first invalid line raises a located `InputError`."""
    for lineno, obj in iter_json_lines(path, allow_empty=allow_empty):
        try:
            yield model.model_validate(obj)
        except ValidationError as e:
            raise validation_error(e, path, lineno) from None


def load_records(path: str | Path, model: type[M], *, allow_empty: bool = False) -> list[M]:
    return list(read_records(path, model, allow_empty=allow_empty))


def dumps(record: BaseModel | dict[str, Any]) -> str:
    obj = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    return json.dumps(obj, ensure_ascii=False, sort_keys=False)


@contextlib.contextmanager
def atomic_writer(path: str | Path, mode: str = "w") -> Iterator[Any]:
    """Open a temp file beside `path`; on success fsync and rename over it, on error delete it.

    Whatever was at `path` before stays untouched unless the whole write succeeds.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_records(path: str | Path, records: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Write all records atomically. Returns the count. Consumes `records` lazily (streams)."""
    n = 0
    with atomic_writer(path) as fh:
        for rec in records:
            fh.write(dumps(rec) + "\n")
            n += 1
    return n


class Appender:
    """Append-only JSONL for resumable stages: each line is flushed and fsynced before `write` returns.

    On open, a torn final line (a crash mid-write) is cut off so that the file stays valid JSONL.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        self._fh = self.path.open("a", encoding="utf-8")

    def write(self, record: BaseModel | dict[str, Any]) -> None:
        self._fh.write(dumps(record) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> "Appender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def repair_torn_tail(path: Path) -> int:
    """Truncate a file after its last newline if the final line is incomplete or not valid JSON.

    Returns the number of bytes cut.
    """
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with path.open("rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return 0
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        try:
            json.loads(tail.decode("utf-8"))
            fh.write(b"\n")  # a complete record that only lacks its newline: keep it
            return 0
        except (UnicodeDecodeError, json.JSONDecodeError):
            fh.truncate(cut)
            return len(tail)
