"""The results of the step checker: one `Claim` per arithmetic claim, one `StepReport` per reasoning text.

Plain frozen data classes, kept apart so that the chain judge (`_chains`) and the entry points
(`_check`) can both build them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

@dataclass(frozen=True)
class Claim:
    """One arithmetic claim: `expression` (Python syntax) is said to equal `claimed`.

    `computed` is the exact value of `expression`, or None when the claim could not be checked (a unit
    conversion); `ok` is True only for a checked claim that holds.
    """

    step: int  # 1-based index into the steps; 0 when the text was not split
    text: str  # the span the claim was read from
    expression: str
    claimed: Fraction
    computed: Fraction | None
    ok: bool

    @property
    def checked(self) -> bool:
        return self.computed is not None

    @property
    def wrong(self) -> bool:
        return self.checked and not self.ok


@dataclass(frozen=True)
class StepReport:
    """The claims of every step; a step with no checked claim is unchecked, neither valid nor wrong."""

    steps: list[str]
    claims: list[Claim]
    first_wrong_step: int | None  # 1-based
    n_steps: int
    n_checked_steps: int  # steps with at least one checked claim
    n_valid_steps: int  # checked steps whose checked claims all hold

    @property
    def wrong_claims(self) -> list[Claim]:
        return [c for c in self.claims if c.wrong]

    @property
    def arithmetic_validity(self) -> float | None:
        """Valid checked steps / checked steps; None when no step had anything to check."""
        return self.n_valid_steps / self.n_checked_steps if self.n_checked_steps else None
