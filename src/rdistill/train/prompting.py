"""How a question becomes the student's prompt, and how a trace becomes its target: shared by training and evaluation.

A trained student only answers well when it is asked the way it was taught, so training records its prompt format
(system prompt, task prefix) in `OUT/rdistill_train.json`, and evaluation rebuilds prompts with `load_prompt_format`
and `PromptFormat.messages` instead of guessing.

The system prompt is optional. Without one, the student's chat template decides (SmolLM2's adds its own default
system prompt, Qwen2.5's too); recording `None` tells evaluation to leave it to the template in the same way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rdistill.answers import check
from rdistill.errors import InputError
from rdistill.records import Trace

RUN_CONFIG_FILE = "rdistill_train.json"


@dataclass(frozen=True)
class PromptFormat:
    system_prompt: str | None = None
    user_prefix: str = ""  # e.g. "[label] " for a distilling-step-by-step student answering with its label task
    # A multi-task student's tasks that a bare question can be asked through, by name ("label", "rationale"):
    # evaluation asks through `user_prefix` unless told another task (`for_task`).
    tasks: dict[str, str] = field(default_factory=dict)

    def messages(self, question: str) -> list[dict[str, str]]:
        """The chat messages that ask `question`; render them with the student's chat template."""
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt is not None else []
        return messages + [{"role": "user", "content": f"{self.user_prefix}{question}"}]

    def with_prefix(self, prefix: str) -> "PromptFormat":
        return PromptFormat(self.system_prompt, prefix, dict(self.tasks))

    def with_tasks(self, tasks: dict[str, str]) -> "PromptFormat":
        return PromptFormat(self.system_prompt, self.user_prefix, dict(tasks))

    def for_task(self, task: str) -> "PromptFormat":
        """The same prompt asking through another of the student's tasks (e.g. a step-by-step student's rationale)."""
        if task not in self.tasks:
            known = ", ".join(sorted(self.tasks)) or "none: it was trained on a single task"
            raise InputError(f"the student has no task {task!r} (its tasks: {known})", field="student_task")
        return PromptFormat(self.system_prompt, self.tasks[task], dict(self.tasks))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.tasks:  # single-task students keep the record (and prompt ids) they always had
            del data["tasks"]
        return data


def load_prompt_format(model_dir: str | Path) -> PromptFormat:
    """The prompt format a student was trained with; a plain format when the folder was not made by rdistill train."""
    path = Path(model_dir) / RUN_CONFIG_FILE
    if not path.is_file():
        return PromptFormat()
    try:
        prompt = json.loads(path.read_text(encoding="utf-8"))["prompt"]
        return PromptFormat(prompt.get("system_prompt"), prompt.get("user_prefix", ""), dict(prompt.get("tasks") or {}))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise InputError(f"cannot read the prompt format ({e})", path=path) from None


def final_answer_sentence(answer: str) -> str:
    return f"The answer is {answer}."


def reasoning_with_answer(trace: Trace) -> str:
    """The trace's reasoning, ending in an answer that the shared checker (the one evaluation uses) reads back.

    The answer the reasoning should conclude is the teacher's own (`predicted_answer`) when the trace records it,
    else the gold answer. If the checker already reads that answer from the reasoning, the text is kept as written;
    otherwise "The answer is X." is appended, so the student learns to end the way evaluation reads answers.
    A trace whose teacher concluded a wrong answer keeps it: filter wrong traces before training, not here.
    """
    reasoning = trace.reasoning.strip()
    answer = trace.predicted_answer if trace.predicted_answer is not None else trace.answer
    if reasoning and check(reasoning, answer, trace.answer_type, trace.choices).correct:
        return reasoning
    return f"{reasoning}\n{final_answer_sentence(answer)}" if reasoning else final_answer_sentence(answer)
