"""What a filter says about one trace: pass, drop with a reason code, or pass with a flag.

Reason codes are a contract: they appear in reports, in `--rejected` files (metadata `filter_reason`)
and in users' scripts. Add new ones at the end; never rename.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

REASONS: tuple[str, ...] = (
    "no_answer", "wrong_answer", "disagrees_with_majority", "too_few_steps", "too_many_steps", "too_long",
    "wrong_arithmetic", "ungrounded_number", "symbolic_mismatch", "code_failed", "code_mismatch", "duplicate",
    # keep_rejected_pairs: a rejected trace whose chosen trace was dropped (or is missing), and one that is right.
    "unpaired_rejected", "rejected_is_correct",
)


@dataclass(frozen=True)
class FilterVerdict:
    reason: str | None = None  # a code from REASONS when the trace is dropped
    details: dict[str, Any] = field(default_factory=dict)
    flag: str | None = None  # a reason code noted on a trace that is kept (e.g. ungrounded numbers)

    @property
    def passed(self) -> bool:
        return self.reason is None


PASS = FilterVerdict()


def drop(reason: str, **details: Any) -> FilterVerdict:
    assert reason in REASONS, reason
    return FilterVerdict(reason=reason, details=json_safe(details))


def flag(reason: str, **details: Any) -> FilterVerdict:
    assert reason in REASONS, reason
    return FilterVerdict(flag=reason, details=json_safe(details))


def json_safe(value: Any) -> Any:
    """Details end up in JSONL metadata: exact numbers become their text ("7/3"), not floats."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, Fraction):
        return str(value)
    return value
