"""Which GGUF file a model came from: the template a GGUF export copies its tokenizer and settings from.

A student's lineage is recorded at every step: its run record names the model it was trained from
(`rdistill_train.json` "student"), a LoRA adapter names its base (`adapter_config.json`
base_model_name_or_path), and a catalog model dequantized for transformers names its catalog entry
(`rdistill-source.json`). Following those links back ends at a catalog model or a .gguf file, or at a
transformers model that never was a GGUF (None).
"""

from __future__ import annotations

import json
from pathlib import Path

from rdistill.models.loading import CONVERTED_MARKER

RUN_RECORD = "rdistill_train.json"  # train/prompting.py writes it; named here so this package needs nothing above
_MAX_DEPTH = 16  # a student of a student of ...; a loop in hand-edited records must not hang


def base_gguf_of(spec: str | Path) -> Path | None:
    """The GGUF file `spec` (a model string or a folder) descends from, or None when it has none."""
    from rdistill.models.catalog import model_path

    current = str(spec)
    for _ in range(_MAX_DEPTH):
        if current.startswith("offline:"):
            return model_path(current.removeprefix("offline:"))
        path = Path(current.removeprefix("hf:")).expanduser()
        if path.suffix == ".gguf" and path.is_file():
            return path
        if not path.is_dir():
            return None
        parent = _recorded_parent(path)
        if parent is None:
            return None
        current = parent
    return None


def _recorded_parent(folder: Path) -> str | None:
    marker = folder / CONVERTED_MARKER
    if marker.is_file():
        return "offline:" + json.loads(marker.read_text(encoding="utf-8"))["name"]
    for config, key in ((folder / "adapter_config.json", "base_model_name_or_path"),
                        (folder / "adapter" / "adapter_config.json", "base_model_name_or_path"),
                        (folder / RUN_RECORD, "student")):
        if config.is_file():
            value = json.loads(config.read_text(encoding="utf-8")).get(key)
            if value:
                return str(value)
    return None
