"""Curriculum (Orca-style progressive learning): chain-of-thought SFT in stages, easy to hard.

Traces are scored by difficulty (--difficulty):
  steps   the number of reasoning steps (the trace's `steps`, else split_steps of its reasoning)
  length  the length of the reasoning in characters (tokenizer-independent, so the order is the same for any student)
  field   the trace's own `difficulty` field (every trace must have one)
and cut into --stages groups of about equal size, in order. Traces with equal scores always share a stage, so a
stage boundary never separates two problems of the same difficulty; with fewer distinct scores than stages there are
fewer stages. Each stage trains for its own epochs (--stage-epochs "1,1,2", else --epochs) with its own learning-rate
schedule, starting from the weights the previous stage ended with, as Orca 2 trains on one data set after another.

With --accumulate (Spitkovsky et al.'s "baby steps"), each stage trains on its own group and every easier one, so the
last stage sees all the data. Disjoint stages end on the hardest traces only, and a small student then writes long
chains for short problems too: SmolLM2-135M wrote 3.9 steps for 1-step problems after disjoint stages, 1.6 with
--accumulate, 1.4 after plain cot_sft (bench/results/train_methods.json).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from rdistill.errors import RdistillError
from rdistill.records import Trace
from rdistill.steps import split_steps
from rdistill.train import core
from rdistill.train.cot_sft import build_examples as cot_examples
from rdistill.train.examples import TraceData
from rdistill.train.prompting import PromptFormat
from rdistill.train.registry import Method
from rdistill.train.settings import TrainSettings

log = logging.getLogger(__name__)

SUMMARY = "chain-of-thought SFT in stages from easy to hard (progressive learning)"


@dataclass(frozen=True)
class CurriculumOptions:
    difficulty: Literal["steps", "length", "field"] = "steps"
    stages: int = 3
    stage_epochs: str | None = None  # "1,1,2": epochs of each stage in order
    accumulate: bool = False  # each stage also trains on the easier stages' traces

    def __post_init__(self):
        if self.stages < 1:
            raise ValueError(f"stages must be at least 1, got {self.stages}")
        if self.stage_epochs is not None:
            epochs = parse_stage_epochs(self.stage_epochs)
            if len(epochs) != self.stages:
                raise ValueError(f"stage_epochs gives {len(epochs)} values for {self.stages} stages")


def parse_stage_epochs(text: str) -> list[float]:
    try:
        epochs = [float(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"stage_epochs must be numbers separated by commas, got {text!r}") from None
    if any(not e > 0 for e in epochs):
        raise ValueError(f"stage_epochs must all be positive, got {text!r}")
    return epochs


def difficulty_score(trace: Trace, kind: str, position: int) -> float:
    if kind == "steps":
        return len(trace.steps or split_steps(trace.reasoning))
    if kind == "length":
        return len(trace.reasoning)
    if trace.difficulty is None:
        raise RdistillError(f"--difficulty field: trace #{position + 1} (problem {trace.problem_id}) has no "
                            "`difficulty`; use --difficulty steps or length, or add the field")
    return trace.difficulty


def stage_groups(scores: list[float], stages: int) -> list[list[int]]:
    """Indices ordered by score, cut into `stages` groups of about equal size; ties stay together, so some groups
    may be empty. Each index goes to the group its score's first position in the sorted order falls into."""
    order = sorted(range(len(scores)), key=lambda i: (scores[i], i))
    groups: list[list[int]] = [[] for _ in range(stages)]
    first_rank: dict[float, int] = {}
    for rank, index in enumerate(order):
        first = first_rank.setdefault(scores[index], rank)
        groups[first * stages // len(order)].append(index)
    return groups


def staged(data: TraceData, examples: list, options) -> list[core.Stage]:
    """`examples` (one per trace, in trace order) cut into stages from easy to hard by `options` (difficulty,
    stages, stage_epochs, accumulate: CurriculumOptions' fields, which orca's options share)."""
    scores = [difficulty_score(trace, options.difficulty, i) for i, trace in enumerate(data.traces)]
    epochs = parse_stage_epochs(options.stage_epochs) if options.stage_epochs else [None] * options.stages
    stages = []
    seen: list[int] = []
    for group, stage_epochs in zip(stage_groups(scores, options.stages), epochs):
        if group:
            seen += group
            members = seen if options.accumulate else group
            low, high = scores[members[0]], scores[members[-1]]
            stages.append(core.Stage(f"stage {len(stages) + 1} ({options.difficulty} {low:g}-{high:g})",
                                     [examples[i] for i in members], stage_epochs))
    if len(stages) < options.stages:
        log.warning("too few distinct difficulty levels for %d stages: training %d", options.stages, len(stages))
    return stages


def recipe(data: TraceData, settings: TrainSettings, options: CurriculumOptions) -> core.Recipe:
    prompt = PromptFormat(settings.system_prompt)
    stages = staged(data, cot_examples(data, prompt), options)
    return core.Recipe("curriculum", SUMMARY, stages, prompt,
                       {"difficulty": options.difficulty, "stages": options.stages,
                        "stage_epochs": options.stage_epochs, "accumulate": options.accumulate})


def run(data: TraceData, settings: TrainSettings, options: CurriculumOptions, on_progress=None) -> core.TrainResult:
    return core.train(recipe(data, settings, options), settings, data, on_progress=on_progress)


METHOD = Method("curriculum", SUMMARY, run, CurriculumOptions)
