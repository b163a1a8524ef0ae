"""Orca explanation tuning (Mukherjee et al. 2023; Orca 2's progressive learning with `curriculum=true`).

Orca-style traces are written under several system prompts (`rdistill generate --strategy orca`: step by step,
explain like a teacher, critical thinking, ...), and the point of training on them is that the student learns to
follow each: so every example keeps the system prompt its trace was written under, where cot_sft would put one
global prompt on all of them. Traces without a system prompt of their own get the run's (--system-prompt).

The student is evaluated as usual with the run's prompt (the record's prompt format: the terse --system-prompt);
the record also lists each style's system prompt and how many examples had it (`method_measured.styles`), so an
evaluation can ask in each style and measure whether the answers follow it (bench/orca_styles.py).

With `curriculum=true` the examples are cut into stages from easy to hard, as the curriculum method does
(`difficulty`, `stages`, `accumulate`, `stage_epochs` as there).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Literal

from rdistill.train import core
from rdistill.train.curriculum import CurriculumOptions, staged
from rdistill.train.examples import Example, TraceData
from rdistill.train.prompting import PromptFormat, reasoning_with_answer
from rdistill.train.registry import Method
from rdistill.train.settings import TrainSettings

log = logging.getLogger(__name__)

SUMMARY = "question under its trace's own system prompt -> reasoning and answer (Orca explanation tuning)"


@dataclass(frozen=True)
class OrcaOptions:
    curriculum: bool = False  # progressive learning: stages from easy to hard
    difficulty: Literal["steps", "length", "field"] = "steps"
    stages: int = 3
    stage_epochs: str | None = None
    accumulate: bool = False

    def __post_init__(self):
        CurriculumOptions(self.difficulty, self.stages, self.stage_epochs, self.accumulate)  # the same checks


def build_examples(data: TraceData, default: PromptFormat) -> list[Example]:
    return [Example(PromptFormat(trace.system_prompt if trace.system_prompt is not None else default.system_prompt,
                                 default.user_prefix).messages(trace.question),
                    reasoning_with_answer(trace), task=f"orca:{trace.style or 'default'}", trace_index=i)
            for i, trace in enumerate(data.traces)]


def styles(data: TraceData, default: PromptFormat) -> dict[str, dict]:
    """{style: {"system_prompt": ..., "examples": n}} as the traces have them (a style written under two system
    prompts is listed once per prompt, with the prompt's first words added to its name)."""
    counts = Counter((t.style or "default", t.system_prompt if t.system_prompt is not None else default.system_prompt)
                     for t in data.traces)
    names = Counter(style for style, _ in counts)
    out = {}
    for (style, prompt), n in sorted(counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        name = style if names[style] == 1 else f"{style} ({' '.join(str(prompt).split()[:4])}...)"
        out[name] = {"system_prompt": prompt, "examples": n}
    return out


def recipe(data: TraceData, settings: TrainSettings, options: OrcaOptions) -> core.Recipe:
    prompt = PromptFormat(settings.system_prompt)
    examples = build_examples(data, prompt)
    stages = staged(data, examples, options) if options.curriculum else [core.Stage("all", examples)]
    found = styles(data, prompt)
    if len(found) == 1:
        log.warning("every trace has the same system prompt: orca trains as cot_sft would; generate the traces with "
                    "--strategy orca for several styles")
    return core.Recipe("orca", SUMMARY, stages, prompt, options=asdict(options), record={"styles": found})


def run(data: TraceData, settings: TrainSettings, options: OrcaOptions, on_progress=None) -> core.TrainResult:
    return core.train(recipe(data, settings, options), settings, data, on_progress=on_progress)


METHOD = Method("orca", SUMMARY, run, OrcaOptions)
