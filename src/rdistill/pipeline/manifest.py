"""The run folder's manifest.json: what was run, from what, and what it produced and cost.

One file per run folder, rewritten atomically after every change of a stage's status:

    {"schema_version", "run_dir", "recipe": {source, sha256, overrides, resolved}, "seeds", "versions",
     "teacher": identity, "student": identity, "created_at", "updated_at", "invocations": [...],
     "stages": {NAME: {"key", "status", "started_at", "finished_at", "seconds", "inputs", "outputs",
                        "usage": {calls, cache_hits, prompt_tokens, completion_tokens, cost_usd}, "detail",
                        "error"}},
     "totals": {seconds, calls, cost_usd, ...}}

A stage's input key is the sha256 of its resolved configuration, the digests of its input files (the outputs of the
stages it reads, recorded when they finished, and any outside file such as a benchmark copy) and the rdistill
version: equal keys mean the stage would be given exactly the same work.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

from rdistill.jsonl import atomic_writer

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1
# Files up to this size are hashed whole inside a folder digest; bigger ones (model weights) by size and mtime,
# which a rename keeps and a rewrite changes.
FOLDER_HASH_LIMIT = 8 * 1024 * 1024


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def stage_key(config: Any, inputs: dict[str, str]) -> str:
    from rdistill import __version__

    payload = canonical_json({"config": config, "inputs": inputs, "rdistill": __version__})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_digest(path: str | Path, *, full: bool = False) -> str:
    """A digest of everything under a folder: small files by content, big ones by size and mtime (or all by
    content with `full`). Hidden bookkeeping files (.stage.json) do not count."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        if any(part.startswith(".") for part in file.relative_to(root).parts):
            continue
        info = file.stat()
        if full or info.st_size <= FOLDER_HASH_LIMIT:
            digest.update(f"{rel}\0{info.st_size}\0{file_digest(file)}\n".encode())
        else:
            digest.update(f"{rel}\0{info.st_size}\0mtime:{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def path_digest(path: str | Path) -> str:
    path = Path(path)
    return folder_digest(path, full=True) if path.is_dir() else file_digest(path)


def describe_output(path: Path) -> dict[str, Any]:
    """{"sha256", "bytes"} of a file (and "rows" for JSONL), or {"sha256", "files", "bytes"} of a folder."""
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
        return {"sha256": folder_digest(path), "files": len(files), "bytes": sum(p.stat().st_size for p in files)}
    info: dict[str, Any] = {"sha256": file_digest(path), "bytes": path.stat().st_size}
    if path.suffix == ".jsonl":
        with path.open("rb") as fh:
            info["rows"] = sum(1 for line in fh if line.strip())
    return info


def output_intact(path: Path, recorded: dict[str, Any]) -> bool:
    """Cheap check that a recorded output is still there as it was written (exists, same size)."""
    if not path.exists():
        return False
    if path.is_file():
        return path.stat().st_size == recorded.get("bytes")
    return True


def usage_from_ledger(ledger: dict | None) -> dict[str, Any]:
    """Calls, cache hits, tokens and cost summed over the models of a ledger summary."""
    totals = {"calls": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    for m in (ledger or {}).get("models", {}).values():
        for k in totals:
            totals[k] += m.get(k) or 0
    totals["cost_usd"] = round(totals["cost_usd"], 6)
    return totals


def model_identity(spec: str) -> dict[str, Any]:
    """What a model string names, as precisely as can be known without loading it: an offline catalog model by
    its GGUF's sha256, a model folder by a digest of its files, anything else by the string itself."""
    identity: dict[str, Any] = {"spec": spec}
    offline = re.search(r"(?:^|:)offline:([^@\s]+)$", spec)
    if offline:
        try:
            from rdistill.models.catalog import get_model

            model = get_model(offline.group(1))
            identity.update(offline=model.name, sha256=model.sha256, quantization=model.quantization)
        except Exception as e:  # noqa: BLE001 - identity is a record, never a reason to fail
            log.debug("no catalog identity for %s: %s", spec, e)
        return identity
    candidate = spec.split(":", 1)[1] if ":" in spec and not Path(spec).exists() else spec
    folder = Path(candidate).expanduser()
    if folder.is_dir():
        identity.update(folder=str(folder.resolve()), digest=folder_digest(folder))
    elif folder.suffix == ".gguf" and folder.is_file():
        info = folder.stat()
        identity.update(file=str(folder.resolve()), bytes=info.st_size, mtime_ns=info.st_mtime_ns)
    return identity


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from rdistill import __version__

    found = {"rdistill": __version__, "python": platform.python_version()}
    for name in ("pydantic", "torch", "transformers", "trl", "peft", "accelerate", "llama_cpp_python", "openai",
                 "anthropic"):
        try:
            found[name] = version(name.replace("_", "-"))
        except PackageNotFoundError:
            pass
    return found


def host() -> dict[str, Any]:
    return {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "python": sys.version.split()[0]}


class Manifest:
    """manifest.json of one run folder; `save()` writes it atomically."""

    def __init__(self, run_dir: Path, data: dict[str, Any]):
        self.run_dir = run_dir
        self.data = data

    @property
    def path(self) -> Path:
        return self.run_dir / MANIFEST_FILE

    @classmethod
    def open(cls, run_dir: str | Path) -> "Manifest":
        run_dir = Path(run_dir)
        path = run_dir / MANIFEST_FILE
        data: dict[str, Any] | None = None
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                log.warning("%s is unreadable (%s): every stage runs again", path, e)
        if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
            data = {"schema_version": SCHEMA_VERSION, "created_at": now(), "stages": {}, "invocations": []}
        data.setdefault("stages", {})
        data.setdefault("invocations", [])
        return cls(run_dir, data)

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        return self.data["stages"]

    def stage(self, name: str) -> dict[str, Any] | None:
        return self.stages.get(name)

    def set_stage(self, name: str, entry: dict[str, Any]) -> None:
        self.stages[name] = entry
        self.save()

    def save(self) -> None:
        self.data["updated_at"] = now()
        self.data["totals"] = self.totals()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_writer(self.path) as fh:
            json.dump(self.data, fh, indent=2, ensure_ascii=False, default=str)
            fh.write("\n")

    def totals(self) -> dict[str, Any]:
        totals: dict[str, Any] = {"seconds": 0.0, "calls": 0, "cache_hits": 0, "prompt_tokens": 0,
                                  "completion_tokens": 0, "cost_usd": 0.0}
        for entry in self.stages.values():
            if entry.get("status") != "done":
                continue
            totals["seconds"] += entry.get("seconds") or 0.0
            for k, v in (entry.get("usage") or {}).items():
                if k in totals and isinstance(v, (int, float)):
                    totals[k] += v
        totals["seconds"] = round(totals["seconds"], 3)
        totals["cost_usd"] = round(totals["cost_usd"], 6)
        return totals
