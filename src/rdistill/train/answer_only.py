"""Answer-only SFT, the classic baseline: the student learns to answer at once, "The answer is X.", no reasoning.

It tells how much of a distilled student's skill comes from the teacher's reasoning rather than from seeing the
questions and answers. Only the question and the gold answer are used, once per question: further traces of the
same question would repeat the identical example.
"""

from __future__ import annotations

from rdistill.train import core
from rdistill.train.examples import Example, TraceData
from rdistill.train.prompting import PromptFormat, final_answer_sentence
from rdistill.train.registry import Method, NoOptions
from rdistill.train.settings import TrainSettings

SUMMARY = 'question -> "The answer is X." (answer-only baseline)'


def build_examples(data: TraceData, prompt: PromptFormat) -> list[Example]:
    seen, examples = set(), []
    for i, trace in enumerate(data.traces):
        key = (trace.question, trace.answer)
        if key in seen:
            continue
        seen.add(key)
        examples.append(Example(prompt.messages(trace.question), final_answer_sentence(trace.answer),
                                task="answer", trace_index=i))
    return examples


def recipe(data: TraceData, settings: TrainSettings, options: NoOptions) -> core.Recipe:
    prompt = PromptFormat(settings.system_prompt)
    return core.Recipe("answer_only", SUMMARY, [core.Stage("all", build_examples(data, prompt))], prompt)


def run(data: TraceData, settings: TrainSettings, options: NoOptions, on_progress=None) -> core.TrainResult:
    return core.train(recipe(data, settings, options), settings, data, on_progress=on_progress)


METHOD = Method("answer_only", SUMMARY, run)
