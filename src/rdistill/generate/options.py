"""What a generation run is asked to do, checked once up front so a bad flag fails before any teacher call."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rdistill.errors import InputError
from rdistill.teachers.base import validate_sampling

# With more than one sample per problem, greedy decoding would give the same text every time.
SAMPLING_TEMPERATURE = 0.7


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based): problems are assigned by a stable hash of their id."""

    index: int
    count: int

    @staticmethod
    def parse(text: str) -> "Shard":
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if match is None:
            raise InputError(f"expected I/N such as 0/4, got {text!r}", field="shard")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or not 0 <= index < count:
            raise InputError(f"shard index must be in 0..N-1 and N >= 1, got {text!r}", field="shard")
        return Shard(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class GenerationOptions:
    samples: int | None = None  # None: the strategy's default (1; orca: one per style; contrastive: 4)
    temperature: float | None = None  # None: 0 for one sample, SAMPLING_TEMPERATURE for several
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int | None = 0
    adaptive: bool = False  # sample until the vote is decisive (rdistill.generate.voting.StopRule) or the cap
    vote_threshold: float = 0.7  # adaptive: the top answer's share must reach this before a decisive lead stops
    max_samples: int = 8
    adaptive_gold: bool = False  # adaptive: a problem with gold stops at the first sample that matches it
    templates: str | Path | None = None  # a YAML file merged over the shipped templates
    shard: Shard | None = None
    mine_from: str | Path | None = None  # contrastive: take candidates from this trace file, draw none
    rewrite_attempts: int = 2  # contrastive: teacher rewrites tried per problem until one qualifies

    def __post_init__(self):
        if self.samples is not None and self.samples < 1:
            raise InputError(f"must be >= 1, got {self.samples}", field="samples")
        if self.samples is not None and self.adaptive:
            raise InputError("adaptive sampling decides the number of samples itself; "
                             "drop --samples and set the cap with --max-samples", field="samples")
        validate_sampling(self.temperature, self.top_p, self.max_tokens)
        if not 0 < self.vote_threshold <= 1:
            raise InputError(f"must be in (0, 1], got {self.vote_threshold}", field="vote_threshold")
        if self.max_samples < 1:
            raise InputError(f"must be >= 1, got {self.max_samples}", field="max_samples")
        if self.rewrite_attempts < 0:
            raise InputError(f"must be >= 0, got {self.rewrite_attempts}", field="rewrite_attempts")

    def temperature_for(self, samples_per_problem: int) -> float:
        if self.temperature is not None:
            return self.temperature
        return SAMPLING_TEMPERATURE if samples_per_problem > 1 or self.adaptive else 0.0
