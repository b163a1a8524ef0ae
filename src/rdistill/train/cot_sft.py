"""Chain-of-thought SFT: the student learns to write the teacher's reasoning, ending in the answer.

Every trace is one example: question -> reasoning (with a final "The answer is X." where the reasoning does not
already state its answer in a way the shared checker reads). Several traces of one question are all kept: varied
rationales for the same problem are a strength of distillation data, not duplicates.
"""

from __future__ import annotations

from rdistill.train import core
from rdistill.train.examples import Example, TraceData
from rdistill.train.prompting import PromptFormat, reasoning_with_answer
from rdistill.train.registry import Method, NoOptions
from rdistill.train.settings import TrainSettings

SUMMARY = "question -> full reasoning and answer (chain-of-thought SFT)"


def build_examples(data: TraceData, prompt: PromptFormat) -> list[Example]:
    return [Example(prompt.messages(trace.question), reasoning_with_answer(trace), task="cot", trace_index=i)
            for i, trace in enumerate(data.traces)]


def recipe(data: TraceData, settings: TrainSettings, options: NoOptions) -> core.Recipe:
    prompt = PromptFormat(settings.system_prompt)
    return core.Recipe("cot_sft", SUMMARY, [core.Stage("all", build_examples(data, prompt))], prompt)


def run(data: TraceData, settings: TrainSettings, options: NoOptions, on_progress=None) -> core.TrainResult:
    return core.train(recipe(data, settings, options), settings, data, on_progress=on_progress)


METHOD = Method("cot_sft", SUMMARY, run)
