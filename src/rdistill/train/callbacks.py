"""What a run reports while it trains: per-step metrics to OUT/metrics.jsonl, and progress to whoever asked.

`metrics.jsonl` has one line per logged optimizer step: step (across stages), stage, stage_step, epoch, loss,
learning_rate, grad_norm, tokens (real tokens in the interval), seconds, tokens_per_s. On --resume, the lines after
the checkpoint being resumed are dropped first (those steps run again), so the file stays one clean curve.
Trainer's own PrinterCallback/ProgressCallback are removed by core: the library never prints.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rdistill.jsonl import Appender, atomic_writer, repair_torn_tail

METRICS_FILE = "metrics.jsonl"
# The parts of a mixed loss a trainer logs beside it (kd: the language-model and distillation terms).
LOSS_PARTS = ("lm_loss", "kd_loss")


@dataclass(frozen=True)
class Progress:
    """Handed to the on_progress callback after every optimizer step."""

    stage: int  # 1-based
    stages: int
    stage_step: int
    stage_steps: int
    step: int  # across stages
    loss: float | None
    tokens_per_s: float | None


class MetricsFile:
    def __init__(self, output_dir: Path):
        self.path = Path(output_dir) / METRICS_FILE
        self._out: Appender | None = None

    def append(self, record: dict[str, Any]) -> None:
        if self._out is None:
            self._out = Appender(self.path)  # flushed and fsynced per line: a crash keeps every logged step
        self._out.write(record)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        repair_torn_tail(self.path)
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def keep_until(self, stage: int, stage_step: int) -> None:
        """Drop records after (stage, stage_step): the steps a resumed run will train again."""
        self.close()
        kept = [r for r in self.records() if (r["stage"], r["stage_step"]) <= (stage, stage_step)]
        with atomic_writer(self.path) as fh:
            for record in kept:
                fh.write(json.dumps(record) + "\n")


def make_reporter(metrics: MetricsFile, meter, *, stage: int, stages: int, step_offset: int,
                  on_progress: Callable[[Progress], None] | None):
    return _reporter_class()(metrics, meter, stage, stages, step_offset, on_progress)


@functools.cache
def _reporter_class():
    from transformers import TrainerCallback

    class RunReporter(TrainerCallback):
        def __init__(self, metrics, meter, stage, stages, step_offset, on_progress):
            self.metrics, self.meter = metrics, meter
            self.stage, self.stages, self.step_offset = stage, stages, step_offset
            self.on_progress = on_progress
            self.last_loss: float | None = None
            self.last_rate: float | None = None
            self.summary: dict[str, Any] = {}

        def on_train_begin(self, args, state, control, **kwargs):
            self.meter.restart_clock()

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "train_runtime" in logs:  # Trainer's end-of-training summary, not a step
                self.summary = dict(logs)
                return
            if "loss" not in logs:
                return
            tokens, seconds = self.meter.take_interval()
            self.last_loss = float(logs["loss"])
            self.last_rate = tokens / seconds if seconds > 0 else None
            if not state.is_world_process_zero:
                return
            self.metrics.append({
                "step": self.step_offset + state.global_step, "stage": self.stage, "stage_step": state.global_step,
                "epoch": logs.get("epoch", state.epoch), "loss": self.last_loss,
                "learning_rate": logs.get("learning_rate"), "grad_norm": logs.get("grad_norm"),
                "tokens": tokens, "seconds": round(seconds, 6), "tokens_per_s": self.last_rate,
                **{key: float(logs[key]) for key in LOSS_PARTS if key in logs},
            })

        def on_step_end(self, args, state, control, **kwargs):
            if self.on_progress is not None and state.is_world_process_zero:
                self.on_progress(Progress(self.stage, self.stages, state.global_step, state.max_steps,
                                          self.step_offset + state.global_step, self.last_loss, self.last_rate))

    return RunReporter
