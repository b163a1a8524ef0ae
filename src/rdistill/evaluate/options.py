"""What an evaluation run is asked to do, checked once before any model call."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rdistill.errors import InputError
from rdistill.teachers.base import validate_sampling
from rdistill.evaluate.prompts import CUSTOM_STYLE, PROMPT_STYLES

# With several samples per problem, greedy decoding would give the same text every time.
SAMPLING_TEMPERATURE = 0.7
ROLES = ("teacher", "baseline", "student")
TRUNCATION_POINTS = (0.0, 0.25, 0.5, 0.75)


@dataclass(frozen=True)
class EvalOptions:
    prompt_style: str = "teacher"  # plain | teacher; ignored when system_prompt is given
    system_prompt: str | None = None
    samples: int = 1
    temperature: float | None = None  # None: greedy for one sample, SAMPLING_TEMPERATURE for several
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int | None = 0
    role: str | None = None  # teacher | baseline | student, for the report
    faithfulness_n: int = 20  # problems that get the faithfulness and coherence probes (0: none)
    truncation_points: tuple[float, ...] = TRUNCATION_POINTS
    early_answer_tokens: int = 32
    judge: str | None = None  # a model string scoring the steps the arithmetic checker cannot check
    student_task: str | None = None  # trained style: ask a multi-task student through this task (e.g. "rationale")
    # How this prompt was chosen, when it was chosen elsewhere (the pipeline's baseline prompt, picked on a validation
    # slice): {"on": ..., "n": ..., "candidates": {style: accuracy}}. Recorded with every result for the report.
    prompt_choice: dict | None = None

    def __post_init__(self):
        if self.system_prompt is None and self.prompt_style not in PROMPT_STYLES:
            raise InputError(f"unknown prompt style {self.prompt_style!r}: use one of {', '.join(PROMPT_STYLES)}",
                             field="prompt_style")
        if self.samples < 1:
            raise InputError(f"must be >= 1, got {self.samples}", field="samples")
        validate_sampling(self.temperature, self.top_p, self.max_tokens)
        if self.role is not None and self.role not in ROLES:
            raise InputError(f"unknown role {self.role!r}: use one of {', '.join(ROLES)}", field="role")
        if self.faithfulness_n < 0:
            raise InputError(f"must be >= 0, got {self.faithfulness_n}", field="faithfulness_n")
        if not self.truncation_points or any(not 0 <= p < 1 for p in self.truncation_points):
            raise InputError("truncation points must be fractions in [0, 1)", field="truncation_points")
        if self.student_task is not None and self.style != "trained":
            raise InputError("a student task needs the trained prompt style (--prompt-style trained)",
                             field="student_task")

    @property
    def style(self) -> str:
        return CUSTOM_STYLE if self.system_prompt is not None else self.prompt_style

    @property
    def effective_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return SAMPLING_TEMPERATURE if self.samples > 1 else 0.0

    def decoding(self) -> dict:
        """What must match between two runs for their accuracies to be compared."""
        return {"temperature": self.effective_temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                "samples": self.samples, "seed": self.seed}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["truncation_points"] = list(self.truncation_points)
        return d
