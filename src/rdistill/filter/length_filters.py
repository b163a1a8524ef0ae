"""Length filters: the number of reasoning steps within bounds, and the reasoning not too long."""

from __future__ import annotations

from rdistill.filter.facts import TraceFacts
from rdistill.filter.verdicts import PASS, FilterVerdict, drop


def step_count_within(f: TraceFacts, min_steps: int | None, max_steps: int | None) -> FilterVerdict:
    n = len(f.steps)
    if min_steps is not None and n < min_steps:
        return drop("too_few_steps", steps=n, min_steps=min_steps)
    if max_steps is not None and n > max_steps:
        return drop("too_many_steps", steps=n, max_steps=max_steps)
    return PASS


def short_enough(f: TraceFacts, max_chars: int) -> FilterVerdict:
    n = len(f.trace.reasoning)
    return drop("too_long", chars=n, max_chars=max_chars) if n > max_chars else PASS
