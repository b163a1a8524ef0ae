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
    vote_confidence: float = 0.95  # adaptive: Beta posterior that the top answer beats the runner-up; 1 = off
    settle: bool = False  # adaptive: also stop once the lead is larger than the samples left
    min_agreeing: int = 3  # adaptive: the vote test needs at least this many agreeing samples
    stop_futile: bool = True  # adaptive: stop once the vote test can no longer pass at the cap
    keep_undecided: bool = False  # adaptive: keep the plurality of a vote that fails the test (default: drop it)
    templates: str | Path | None = None  # a YAML file merged over the shipped templates
    shard: Shard | None = None
    mine_from: str | Path | None = None  # contrastive: take candidates from this trace file, draw none
    rewrite_attempts: int = 2  # contrastive: teacher rewrites tried per problem until one qualifies
    logprobs: int = 0  # >0: store the teacher's token ids and top-k log-probabilities with each trace (train -m kd)

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
        if not 0 <= self.vote_confidence <= 1:
            raise InputError(f"must be in [0, 1] (1 turns the Beta stop off), got {self.vote_confidence}",
                             field="vote_confidence")
        if self.min_agreeing < 1:
            raise InputError(f"must be >= 1, got {self.min_agreeing}", field="min_agreeing")
        if self.adaptive and self.min_agreeing > self.max_samples:
            raise InputError(f"{self.min_agreeing} agreeing samples can never be reached with --max-samples "
                             f"{self.max_samples}: every vote would fail", field="min_agreeing")
        if not 0 <= self.logprobs <= 100:
            raise InputError(f"must be in 0..100 (top-k alternatives per token), got {self.logprobs}",
                             field="logprobs")
        if self.rewrite_attempts < 0:
            raise InputError(f"must be >= 0, got {self.rewrite_attempts}", field="rewrite_attempts")

    def stop_rule(self):
        """The adaptive stopping and keep rule these options ask for (rdistill.generate.voting.StopRule)."""
        from rdistill.generate.voting import StopRule

        return StopRule(self.vote_threshold, self.max_samples, self.adaptive_gold, confidence=self.vote_confidence,
                        settle=self.settle, min_agreeing=self.min_agreeing, futility=self.stop_futile)

    def temperature_for(self, samples_per_problem: int) -> float:
        if self.temperature is not None:
            return self.temperature
        return SAMPLING_TEMPERATURE if samples_per_problem > 1 or self.adaptive else 0.0
