"""Everything a training run is told, in one validated dataclass shared by every method."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rdistill.errors import RdistillError

# LoRA trains few, freshly initialised parameters and wants a larger step than full fine-tuning, which moves all
# pretrained weights; these are the usual starting points for 0.1B-7B students.
DEFAULT_LR_LORA = 2e-4
DEFAULT_LR_FULL = 2e-5
REPORTERS = {"tensorboard": ("tensorboard", "pip install tensorboard"), "wandb": ("wandb", "pip install wandb")}


@dataclass
class TrainSettings:
    student: str  # model string for rdistill.models.load_causal_lm: offline:NAME, hf:ID, or a folder
    output_dir: Path
    lora: bool = True  # False: full fine-tuning
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    learning_rate: float | None = None  # None: DEFAULT_LR_LORA or DEFAULT_LR_FULL
    epochs: float = 3.0  # per stage for multi-stage methods
    max_steps: int | None = None  # optimizer steps per stage; overrides epochs
    batch_size: int = 8  # sequences per device per micro-batch; with packing, packed rows of max_length tokens
    grad_accum: int = 1
    max_length: int = 1024  # longer examples are dropped (a cut trace loses its answer); with packing: row length
    packing: bool = False
    seed: int = 0
    system_prompt: str | None = None  # None: whatever the student's chat template does without one
    resume: bool = False
    save_steps: int = 100
    save_total_limit: int | None = 2
    logging_steps: int = 1
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    lr_scheduler: str = "cosine"
    bf16: bool | None = None  # None: on a GPU that supports it; CPUs train in float32
    gradient_checkpointing: bool = False  # trades ~30% speed for memory; worth it for big students on small GPUs
    report_to: list[str] = field(default_factory=list)  # "tensorboard", "wandb"
    dataloader_workers: int = 0
    # A LoRA student is its adapter (OUT/adapter); a ~1-2 GB merged copy in OUT is written only when asked for,
    # since rdistill serves and loads the adapter itself (`rdistill export --to hf` merges it later, on demand).
    save_merged: bool = False

    def __post_init__(self):
        self.output_dir = Path(self.output_dir)

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return DEFAULT_LR_LORA if self.lora else DEFAULT_LR_FULL

    def validate(self) -> None:
        positive = {"--batch-size": self.batch_size, "--grad-accum": self.grad_accum, "--max-length": self.max_length,
                    "--save-steps": self.save_steps, "--logging-steps": self.logging_steps, "--lora-r": self.lora_r}
        for flag, value in positive.items():
            if value < 1:
                raise RdistillError(f"{flag} must be at least 1, got {value}")
        if not (self.epochs > 0 and math.isfinite(self.epochs)):
            raise RdistillError(f"--epochs must be a positive number, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise RdistillError(f"--max-steps must be at least 1, got {self.max_steps}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise RdistillError(f"--lr must be a positive number, got {self.lr}")
        if not 0 <= self.lora_dropout < 1:
            raise RdistillError(f"--lora-dropout must be in [0, 1), got {self.lora_dropout}")
        if not 0 <= self.warmup_ratio < 1:
            raise RdistillError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        for name in self.report_to:
            if name not in REPORTERS:
                raise RdistillError(f"--report-to {name!r}: use one of {', '.join(REPORTERS)}")
            module, install = REPORTERS[name]
            if importlib.util.find_spec(module) is None:
                raise RdistillError(f"--report-to {name} needs the {module} package: {install}")

    def hyperparameters(self) -> dict[str, Any]:
        """What shapes the trained weights: recorded in the model card and checked on --resume."""
        keys = ["lora", "learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "max_length", "packing",
                "seed", "system_prompt", "warmup_ratio", "weight_decay", "lr_scheduler", "gradient_checkpointing"]
        values = {k: v for k, v in asdict(self).items() if k in keys}
        values["learning_rate"] = self.lr
        if self.lora:
            values.update(lora_r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                          lora_target_modules="all-linear")
        return values
