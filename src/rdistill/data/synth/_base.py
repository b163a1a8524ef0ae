"""What every task family shares: the candidate it builds, and the rule that assigns a question to a split.

A family module exposes MAX_STEPS, DOMAIN, ANSWER_TYPE, OPTIONS (name -> default) and
`make_candidate(rng, steps, options) -> Candidate | None` (None: this draw did not work out, try again).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

SPLITS: tuple[str, ...] = ("train", "validation", "test")


@dataclass
class Candidate:
    question: str
    answer: str
    steps: list[str]  # one checkable line per reasoning step, without the "Step i: " prefix
    metadata: dict[str, Any] = field(default_factory=dict)


def normalise_question(text: str) -> str:
    """Case and spacing do not make two questions different, so they do not count for splits or dedup."""
    return " ".join(text.lower().split())


def split_of(question: str) -> str:
    """The split a question belongs to, from its text alone.

    Deciding by a content hash (not by draw order) means a question can never be in two splits, whatever
    the seed, count or options of the calls that produced them. Buckets: 70% train, 10% validation, 20% test.
    """
    digest = hashlib.sha256(normalise_question(question).encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") % 10
    if bucket < 2:
        return "test"
    if bucket == 2:
        return "validation"
    return "train"
