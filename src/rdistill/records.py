"""The records every stage exchanges, as versioned pydantic models.

Field names are a contract with users: `id`, `question`, `answer`, `answer_type` for problems;
`problem_id`, `question`, `answer`, `reasoning`, `predicted_answer`, `correct` for traces. A trace file
made elsewhere needs only `question`, `answer` and `reasoning` on each line.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1

AnswerType = Literal["numeric", "math", "choice", "boolean", "text"]
ANSWER_TYPES: tuple[str, ...] = ("numeric", "math", "choice", "boolean", "text")


class _Record(BaseModel):
    # Unknown fields are kept, not dropped: users annotate their files and expect them back.
    model_config = ConfigDict(extra="allow", validate_assignment=False)

    schema_version: int = SCHEMA_VERSION

    @model_validator(mode="after")
    def _check_version(self):
        if self.schema_version > SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is newer than this rdistill understands "
                f"({SCHEMA_VERSION}); upgrade rdistill")
        return self

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _fill_answer_type(rec) -> None:
    if rec.answer_type is None:
        from rdistill.answers import infer_answer_type

        rec.answer_type = infer_answer_type(rec.answer, rec.choices)


def stable_id(*parts: str, length: int = 12) -> str:
    """A short content hash, stable across machines and Python versions."""
    h = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return h[:length]


class Problem(_Record):
    id: str
    question: str = Field(min_length=1)
    answer: str
    answer_type: AnswerType | None = None
    choices: list[str] | None = None
    solution: str | None = None  # a gold step-by-step solution where the source has one
    domain: str = "general"
    difficulty: int | None = None  # for built-in tasks: the number of reasoning steps
    source: str = ""
    split: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data: Any):
        return _coerce_answer_and_id(data, "id")

    @model_validator(mode="after")
    def _infer(self):
        _fill_answer_type(self)
        return self


class Usage(BaseModel):
    model_config = ConfigDict(extra="allow")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    cached: bool = False
    cached_prompt_tokens: int | None = None  # taken from the server's prompt cache (llama-server's cache_n)


class TeacherTokens(BaseModel):
    """The teacher's own tokens for a trace's reasoning, with its top-k alternatives at each position (`generate
    --logprobs K`), for logit distillation (train method kd). Log-probabilities are the teacher's raw next-token
    distribution (temperature 1, before sampling), as llama-server and the hf: backend report them."""

    model_config = ConfigDict(extra="allow")
    ids: list[int]  # the tokens generated, in order; their text is the trace's reasoning
    logprobs: list[float]  # the generated token's log-probability at each position
    top_ids: list[list[int]]  # the k most likely tokens at each position ...
    top_logprobs: list[list[float]]  # ... and their log-probabilities, most likely first

    @model_validator(mode="after")
    def _aligned(self):
        n = len(self.ids)
        if not (len(self.logprobs) == len(self.top_ids) == len(self.top_logprobs) == n):
            raise ValueError(f"ids, logprobs, top_ids and top_logprobs must have one entry per token ({n})")
        if any(len(i) != len(v) for i, v in zip(self.top_ids, self.top_logprobs)):
            raise ValueError("top_ids and top_logprobs differ in length at some position")
        return self


class Trace(_Record):
    problem_id: str = ""
    question: str = Field(min_length=1)
    answer: str
    answer_type: AnswerType | None = None
    choices: list[str] | None = None
    reasoning: str
    teacher: str = ""
    strategy: str = "external"
    system_prompt: str | None = None
    style: str | None = None
    steps: list[str] = Field(default_factory=list)
    predicted_answer: str | None = None
    correct: bool | None = None
    sample_index: int = 0
    hinted: bool = False  # written with the gold answer in view (rationalization)
    difficulty: int | None = None
    usage: Usage = Field(default_factory=Usage)
    metadata: dict[str, Any] = Field(default_factory=dict)
    teacher_tokens: TeacherTokens | None = None  # with `generate --logprobs K`

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data: Any):
        return _coerce_answer_and_id(data, "problem_id")

    @model_validator(mode="after")
    def _infer(self):
        _fill_answer_type(self)
        return self

    @property
    def key(self) -> tuple[str, str, int]:
        """Identity within a trace store: one record per (problem, strategy, sample)."""
        return (self.problem_id, self.strategy, self.sample_index)


class EvalResult(_Record):
    model: str
    bench: str
    problem_id: str
    question: str
    answer: str
    answer_type: AnswerType | None = None
    choices: list[str] | None = None
    prediction: str
    extracted: str | None = None
    correct: bool
    sample_index: int = 0
    difficulty: int | None = None
    n_steps: int | None = None
    # Cut off at max_tokens (and so most likely wrong for that alone); None: unknown, as in result files written
    # before this was recorded and for failed calls.
    truncated: bool | None = None
    usage: Usage = Field(default_factory=Usage)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _infer(self):
        _fill_answer_type(self)
        return self


def _coerce_answer_and_id(data: Any, id_field: str) -> Any:
    """Accept numeric/boolean gold answers as written by other tools, and derive a missing id from the question."""
    if isinstance(data, dict):
        data = dict(data)
        if "answer" in data and isinstance(data["answer"], (int, float, bool)):
            data["answer"] = _scalar_to_str(data["answer"])
        if not data.get(id_field) and data.get("question"):
            data[id_field] = stable_id(str(data["question"]))
    return data


def _scalar_to_str(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
