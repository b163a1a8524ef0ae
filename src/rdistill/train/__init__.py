"""Training the student on teacher traces.

    from rdistill.train import TrainSettings, train_student
    result = train_student("traces.jsonl", TrainSettings(student="offline:smollm2-135m-instruct",
                                                         output_dir="out/student"), method="cot_sft")

From the command line: `rdistill train TRACES --student S --method M -o OUT [...]`. On several GPUs (or several
CPU processes), launch the same command through accelerate; each process trains on its share of every batch:

    accelerate launch --multi_gpu --num_processes 2 -m rdistill train TRACES --student S -o OUT

Layout:
- core.py           the shared core: student loading, tokenizing, packing, LoRA/full training, checkpoints and
                    resume, saving (HF format, merged LoRA), run record, model card, metrics.jsonl
- cot_sft.py, answer_only.py, step_by_step.py, curriculum.py, kd.py: one method each, a recipe over the core
  (kd brings its own columns and trainer through core.Recipe.decorate_row / trainer_class);
  contrastive.py, dpo.py: the pair methods, over pair_core.py
- prompting.py      the prompt format a student is trained (and must be evaluated) with
- registry.py       methods by name, with did-you-mean, and their options

Adding a method (the extension point). Write one module here that defines

    METHOD = Method(name, summary, run, OptionsDataclass)

where `run(data: TraceData, settings: TrainSettings, options, on_progress) -> TrainResult`. The registry finds it
by scanning this package; the CLI reaches its options with `-O key=value` (typed by the dataclass fields). Nothing
else changes. The methods planned next fit as follows:
- STaR: a loop of generate (rdistill.teachers hf: backend on the current student) -> filter with answers.check ->
  core.train(cot_sft.recipe(...)) per iteration, each iteration a stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from rdistill.train.prompting import RUN_CONFIG_FILE, PromptFormat, load_prompt_format
from rdistill.train.settings import TrainSettings

__all__ = ["RUN_CONFIG_FILE", "PromptFormat", "TrainSettings", "load_prompt_format", "method_names",
           "train_student"]


def train_student(traces: str | Path, settings: TrainSettings, *, method: str = "cot_sft",
                  options: dict[str, Any] | None = None, on_progress: Callable | None = None):
    """Train `settings.student` on the trace file with `method`; returns core.TrainResult."""
    from rdistill.train.examples import load_trace_data
    from rdistill.train.registry import get_method, parse_options

    chosen = get_method(method)
    parsed = parse_options(chosen, options or {})  # before loading anything: a typo fails in milliseconds
    data = load_trace_data(traces)
    if not chosen.pairwise:
        data = data.without_rejected()
    return chosen.run(data, settings, parsed, on_progress)


def method_names() -> list[str]:
    from rdistill.train.registry import method_names as names

    return names()
