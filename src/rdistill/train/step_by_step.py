"""Distilling step-by-step (Hsieh et al., 2023): rationales as a second task, not as the output.

Each trace gives two examples told apart by a task prefix in the user message:
  "[label] question"      -> "The answer is X."        weight 1
  "[rationale] question"  -> the teacher's reasoning    weight lambda (--rationale-weight)
and, with --next-step, one example per reasoning step:
  "[next-step] question + steps so far" -> the next step, the trace's steps sharing weight lambda (each lambda / n).

The paper's loss is L_label + lambda * L_rationale, each a mean over its tokens. Here each example's weight is
spread over its completion tokens and the batch loss is the weighted mean over examples (trainer.py): the same
1 : lambda split between the tasks, whatever the lengths of rationales and labels, divided by the total weight so
the learning rate means the same for every lambda. Real per-example loss weights rather than sampling proportions:
sampling would need lambda to be a ratio of counts, and would repeat or drop examples to get it.

At inference the student answers through the label task (short and fast, as in the paper): the "[label] " prefix
is recorded in the run's prompt format, so evaluation asks the same way. The rationale task is recorded too:
`rdistill eval --prompt-style trained --student-task rationale` asks the student for its reasoning instead, which
shows whether the multi-task student can reason its way to the answer, not only state it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rdistill.steps import split_steps
from rdistill.train import core
from rdistill.train.examples import Example, TraceData
from rdistill.train.prompting import PromptFormat, final_answer_sentence
from rdistill.train.registry import Method
from rdistill.train.settings import TrainSettings

SUMMARY = "multi-task [label] answer + [rationale] reasoning (distilling step-by-step)"
LABEL_PREFIX = "[label] "
RATIONALE_PREFIX = "[rationale] "
NEXT_STEP_PREFIX = "[next-step] "
# The tasks a bare question can be asked through (the next-step task needs the steps so far, so it is not one).
TASKS = {"label": LABEL_PREFIX, "rationale": RATIONALE_PREFIX}


@dataclass(frozen=True)
class StepByStepOptions:
    rationale_weight: float = 1.0  # lambda
    next_step: bool = False

    def __post_init__(self):
        if not (self.rationale_weight > 0 and math.isfinite(self.rationale_weight)):
            raise ValueError(f"rationale_weight must be a positive number, got {self.rationale_weight}")


def next_step_question(question: str, steps_so_far: list[str]) -> str:
    done = "\n".join(f"Step {n}: {step}" for n, step in enumerate(steps_so_far, start=1)) or "(none yet)"
    return f"{question}\n\nSteps so far:\n{done}\n\nWrite the next step."


def build_examples(data: TraceData, prompt: PromptFormat, options: StepByStepOptions) -> list[Example]:
    label, rationale, next_step = (prompt.with_prefix(p) for p in (LABEL_PREFIX, RATIONALE_PREFIX, NEXT_STEP_PREFIX))
    examples = []
    for i, trace in enumerate(data.traces):
        examples.append(Example(label.messages(trace.question), final_answer_sentence(trace.answer), 1.0,
                                "label", i))
        examples.append(Example(rationale.messages(trace.question), trace.reasoning.strip(),
                                options.rationale_weight, "rationale", i))
        if options.next_step:
            steps = trace.steps or split_steps(trace.reasoning)
            for k, step in enumerate(steps):
                examples.append(Example(next_step.messages(next_step_question(trace.question, steps[:k])), step,
                                        options.rationale_weight / len(steps), "next_step", i))
    return examples


def recipe(data: TraceData, settings: TrainSettings, options: StepByStepOptions) -> core.Recipe:
    prompt = PromptFormat(settings.system_prompt)
    return core.Recipe("step_by_step", SUMMARY, [core.Stage("all", build_examples(data, prompt, options))],
                       prompt.with_prefix(LABEL_PREFIX).with_tasks(TASKS),
                       {"rationale_weight": options.rationale_weight, "next_step": options.next_step},
                       weighted=True)


def run(data: TraceData, settings: TrainSettings, options: StepByStepOptions,
        on_progress=None) -> core.TrainResult:
    return core.train(recipe(data, settings, options), settings, data, on_progress=on_progress)


METHOD = Method("step_by_step", SUMMARY, run, StepByStepOptions, tasks=tuple(TASKS))
