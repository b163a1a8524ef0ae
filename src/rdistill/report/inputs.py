"""What a report is built from: evaluation result files (EvalResult JSONL) and teacher ledgers (JSON), given
directly or found inside run folders."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from rdistill.errors import InputError

log = logging.getLogger(__name__)

_RESULT_KEYS = {"model", "bench", "problem_id", "prediction", "correct"}
_LEDGER_KEYS = {"models", "spent_usd"}


@dataclass
class ReportInputs:
    result_files: list[Path] = field(default_factory=list)
    ledger_files: list[Path] = field(default_factory=list)


def discover(paths: list[str | Path], ledgers: list[str | Path] = ()) -> ReportInputs:
    """Result files among `paths`; a folder is searched (recursively) for result files and ledgers."""
    found = ReportInputs()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for candidate in sorted(path.rglob("*.jsonl")):
                if is_result_file(candidate):
                    found.result_files.append(candidate)
            found.ledger_files.extend(p for p in sorted(path.rglob("*.json")) if is_ledger_file(p))
        elif path.is_file():
            if not is_result_file(path):
                raise InputError("not an evaluation result file (expected `rdistill eval` output: JSONL with "
                                 "model, bench, problem_id, prediction, correct)", path=path)
            found.result_files.append(path)
        else:
            raise InputError("no such file or folder", path=path)
    for raw in ledgers:
        path = Path(raw)
        if not is_ledger_file(path):
            raise InputError("not a ledger (expected JSON with `models` and `spent_usd`, as teacher runs write)",
                             path=path)
        found.ledger_files.append(path)
    if not found.result_files:
        raise InputError("no evaluation results found: pass result files written by `rdistill eval`, or folders "
                         "holding them", path=", ".join(map(str, paths)))
    found.result_files = _unique(found.result_files)
    found.ledger_files = _unique(found.ledger_files)
    return found


def is_result_file(path: Path) -> bool:
    try:
        with path.open("r", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    first = json.loads(line)
                    return isinstance(first, dict) and _RESULT_KEYS <= set(first)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return False


def is_ledger_file(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and _LEDGER_KEYS <= set(data) and isinstance(data["models"], dict)


def find_manifest(paths: list[str | Path]) -> dict | None:
    """The manifest.json of a run folder among `paths` (the first one holding it), else None."""
    for raw in paths:
        manifest = Path(raw) / "manifest.json"
        if Path(raw).is_dir() and manifest.is_file():
            try:
                return json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise InputError(f"cannot read the run's manifest: {e}", path=manifest) from None
    return None


def load_ledger(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _unique(paths: list[Path]) -> list[Path]:
    seen, out = set(), []
    for p in paths:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
