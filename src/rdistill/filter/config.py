"""The settings of one filter run; the CLI flags map onto these one to one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rdistill.errors import InputError
from rdistill.filter.sandbox import SandboxLimits


@dataclass(frozen=True)
class FilterConfig:
    require_correct: bool = True  # judge against gold; where a trace has no gold, against the majority
    majority: bool = False  # judge every trace against the majority vote instead of its gold answer
    min_steps: int | None = None
    max_steps: int | None = None
    max_chars: int | None = None
    check_arithmetic: bool = True
    check_grounded: bool = False  # ungrounded numbers are always flagged; dropped only with this on
    dedup: bool = False
    dedup_threshold: float = 0.9
    symbolic: bool = False
    sandbox: bool = False
    sandbox_limits: SandboxLimits = field(default_factory=SandboxLimits)
    # Pair traces (contrastive strategy: metadata pair_id, role): keep a rejected trace, wrong by design, exactly when
    # the chosen trace of its pair is kept, for pair training methods (dpo, contrastive); see pipeline.py.
    keep_rejected_pairs: bool = False

    def __post_init__(self):
        for name in ("min_steps", "max_steps", "max_chars"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InputError(f"must be >= 0, got {value}", field=name)
        if self.min_steps is not None and self.max_steps is not None and self.min_steps > self.max_steps:
            raise InputError(f"min_steps {self.min_steps} is above max_steps {self.max_steps}", field="min_steps")
        if not 0.0 < self.dedup_threshold <= 1.0:
            raise InputError(f"must be in (0, 1], got {self.dedup_threshold}", field="dedup_threshold")

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)
