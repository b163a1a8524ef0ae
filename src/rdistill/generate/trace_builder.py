"""Turn one teacher completion into a Trace: answer extracted and judged by the shared checker, steps split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rdistill.answers import check, extract_answer
from rdistill.errors import RdistillError
from rdistill.records import Problem, TeacherTokens, Trace, Usage
from rdistill.steps import split_steps
from rdistill.teachers.base import Completion


@dataclass(frozen=True)
class Prompt:
    """One request a strategy wants answered, and what the resulting trace should record about it."""

    user: str
    system: str | None = None
    style: str | None = None
    hinted: bool = False  # the gold answer (or a correct solution) was in the prompt
    metadata: dict[str, Any] = field(default_factory=dict)


def judge_text(text: str, problem: Problem) -> tuple[str | None, bool | None]:
    """(extracted answer, correct); correct is None for a problem without a gold answer."""
    if not problem.answer.strip():
        return extract_answer(text, problem.answer_type, problem.choices), None
    verdict = check(text, problem.answer, problem.answer_type, problem.choices)
    return verdict.extracted, verdict.correct


def build_trace(problem: Problem, completion: Completion, prompt: Prompt, *, strategy: str, teacher: str,
                sample_index: int) -> Trace:
    predicted, correct = judge_text(completion.text, problem)
    metadata = {**prompt.metadata, "finish_reason": completion.finish_reason}
    return Trace(
        problem_id=problem.id, question=problem.question, answer=problem.answer, answer_type=problem.answer_type,
        choices=problem.choices, reasoning=completion.text, teacher=teacher, strategy=strategy,
        system_prompt=prompt.system, style=prompt.style, steps=split_steps(completion.text),
        predicted_answer=predicted, correct=correct, sample_index=sample_index, hinted=prompt.hinted,
        difficulty=problem.difficulty,
        usage=Usage(prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
                    cost_usd=completion.cost_usd, seconds=round(completion.seconds, 4), cached=completion.cached,
                    cached_prompt_tokens=completion.cached_prompt_tokens),
        metadata=metadata, teacher_tokens=teacher_tokens(completion, teacher))


def teacher_tokens(completion: Completion, teacher: str) -> TeacherTokens | None:
    """The completion's token ids and top-k log-probabilities, when they were asked for (None otherwise)."""
    steps = completion.logprobs
    if not steps:
        return None
    if any(s.token_id is None or s.top_ids is None for s in steps):
        raise RdistillError(f"{teacher} returned log-probabilities without token ids; logit distillation trains on "
                            "ids: use a teacher served by llamaserver: or hf: for --logprobs")
    return TeacherTokens(ids=[s.token_id for s in steps], logprobs=[s.logprob for s in steps],
                         top_ids=[list(s.top_ids) for s in steps], top_logprobs=[[lp for _, lp in s.top] for s in steps])
