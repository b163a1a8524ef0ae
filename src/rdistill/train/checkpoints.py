"""Finding the checkpoint to resume from after a crash, and refusing to resume a different run.

Trainer writes a checkpoint folder in place (weights, optimizer, scheduler, RNG states) and its trainer_state.json
last, so a process killed mid-save leaves a folder without a readable state. Trainer's own get_last_checkpoint
would pick that folder by its number and fail; here only checkpoints with a readable trainer_state.json count, and
incomplete ones are moved out of the way (renamed, not deleted: they may be all that is left of a long run).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from rdistill.errors import RdistillError

log = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
FINGERPRINT_FILE = "run_fingerprint.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def trainer_state(checkpoint: Path) -> dict[str, Any] | None:
    try:
        return json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The highest-step checkpoint in `folder` whose trainer_state.json reads; None if there is none."""
    if not folder.is_dir():
        return None
    complete = []
    for child in folder.iterdir():
        m = _CHECKPOINT.match(child.name)
        if m and child.is_dir() and trainer_state(child) is not None:
            complete.append((int(m.group(1)), child))
    return max(complete)[1] if complete else None


def set_aside_incomplete_checkpoints(folder: Path) -> list[Path]:
    """Rename checkpoint folders that a crash left half-written, so Trainer never picks or rotates them."""
    moved = []
    if not folder.is_dir():
        return moved
    for child in sorted(folder.iterdir()):
        if _CHECKPOINT.match(child.name) and child.is_dir() and trainer_state(child) is None:
            target = child.with_name(f"incomplete-{child.name}")
            n = 1
            while target.exists():
                n += 1
                target = child.with_name(f"incomplete{n}-{child.name}")
            child.rename(target)
            log.warning("set aside %s: a crash interrupted its writing", child)
            moved.append(target)
    return moved


def checkpoint_progress(checkpoint: Path) -> tuple[int, int]:
    """(global_step, max_steps) recorded in a complete checkpoint."""
    state = trainer_state(checkpoint) or {}
    return int(state.get("global_step", 0)), int(state.get("max_steps", 0))


def check_fingerprint(checkpoints_dir: Path, fingerprint: dict[str, Any], *, resume: bool) -> None:
    """Record what this run trains; on --resume, refuse if the data, student, method or hyperparameters changed."""
    path = checkpoints_dir / FINGERPRINT_FILE
    if resume and path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
        if changed:
            details = "; ".join(f"{k}: {previous.get(k)!r} -> {fingerprint.get(k)!r}" for k in changed)
            raise RdistillError(f"--resume: this run differs from the one in {checkpoints_dir.parent} ({details}); "
                                "resume with the same settings, or train into a new output folder")
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fingerprint, indent=2, sort_keys=True, default=str), encoding="utf-8")
