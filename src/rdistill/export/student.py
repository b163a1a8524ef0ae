"""A student folder as `rdistill train` writes it, read for export.

    OUT/rdistill_train.json   the run record (written last: its presence means training finished)
    OUT/adapter/              a LoRA student's PEFT adapter (+ tokenizer)
    OUT/config.json ...       merged or fully fine-tuned weights, when training saved them
    OUT/README.md             the model card
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdistill.errors import RdistillError

RUN_RECORD = "rdistill_train.json"


class ExportInputError(RdistillError):
    """What was given to export is not something it can export."""


@dataclass(frozen=True)
class StudentFolder:
    path: Path
    record: dict[str, Any]

    @classmethod
    def read(cls, folder: str | Path) -> "StudentFolder":
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise ExportInputError(f"{path}: no such folder; give the folder `rdistill train` wrote "
                                   "(in a run folder: RUN/train/NAME)")
        record_path = path / RUN_RECORD
        if not record_path.is_file():
            hint = " (training has not finished, or this is not a student)" if (path / "checkpoints").is_dir() else ""
            raise ExportInputError(f"{path} is not a student folder: it has no {RUN_RECORD}{hint}; give the folder "
                                   "`rdistill train` wrote (in a run folder: RUN/train/NAME)")
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise ExportInputError(f"{record_path}: not valid JSON ({e})") from None
        if not isinstance(record, dict) or not record.get("student"):
            raise ExportInputError(f"{record_path}: field 'student' (the model it was trained from) is missing")
        folder_ = cls(path.resolve(), record)
        if folder_.adapter_dir is None and not folder_.has_full_weights:
            raise ExportInputError(f"{path} holds neither a LoRA adapter (adapter/adapter_config.json) nor model "
                                   "weights (config.json): the folder is incomplete")
        return folder_

    @property
    def name(self) -> str:
        return str(self.record.get("output_name") or self.path.name)

    @property
    def adapter_dir(self) -> Path | None:
        candidate = self.path / "adapter"
        return candidate if (candidate / "adapter_config.json").is_file() else None

    @property
    def has_full_weights(self) -> bool:
        return (self.path / "config.json").is_file() and any(self.path.glob("*.safetensors"))

    @property
    def system_prompt(self) -> str | None:
        return (self.record.get("prompt") or {}).get("system_prompt")

    @property
    def user_prefix(self) -> str:
        return (self.record.get("prompt") or {}).get("user_prefix") or ""

    @property
    def chat_template(self) -> str | None:
        """The chat template the student was trained with (the tokenizer's, saved beside the weights)."""
        for folder in (self.path, self.path / "adapter"):
            jinja = folder / "chat_template.jinja"
            if jinja.is_file():
                return jinja.read_text(encoding="utf-8")
        return self.record.get("chat_template") or None

    def model_spec(self) -> str:
        """What rdistill.models.load_causal_lm loads for this student: the saved weights when there are any (a
        merged LoRA student or a full fine-tune), else the adapter over its base."""
        return str(self.path if self.has_full_weights else self.adapter_dir)

    def describe(self) -> str:
        kind = "LoRA" if self.adapter_dir is not None else "full fine-tune"
        return f"{self.name} ({self.record.get('method', '?')}, {kind} of {self.record['student']})"
