"""Training examples in TRL's conversational prompt/completion shape, and the trace file they come from.

A method turns traces into `Example`s: chat messages to condition on (the prompt) and the assistant text to learn
(the completion), with a loss weight. Only completion tokens are trained on; see tokenize.py.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rdistill.errors import InputError
from rdistill.jsonl import iter_json_lines, validation_error
from rdistill.records import Trace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    prompt: list[dict[str, str]]  # system (optional) and user messages
    completion: str  # the assistant's reply to learn
    weight: float = 1.0  # relative loss weight of this example (distilling step-by-step's lambda)
    task: str = "sft"  # what the example teaches: "sft", "label", "rationale", "next_step", ...
    trace_index: int = -1  # where it came from in the trace file, for ordering and debugging

    def conversational(self) -> dict[str, Any]:
        """TRL's conversational prompt-completion format."""
        return {"prompt": self.prompt, "completion": [{"role": "assistant", "content": self.completion}]}


@dataclass(frozen=True)
class TraceData:
    path: Path
    sha256: str
    traces: list[Trace] = field(repr=False)

    @property
    def count(self) -> int:
        return len(self.traces)

    def teachers(self) -> dict[str, int]:
        """How many traces each teacher wrote ("unknown" where the file does not say)."""
        return dict(Counter(t.teacher or "unknown" for t in self.traces).most_common())

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "traces": self.count, "teachers": self.teachers()}

    def without_rejected(self) -> "TraceData":
        """The traces a method that imitates may learn from: not the planted-wrong "rejected" side of a contrastive
        pair (a filter run with keep_rejected_pairs keeps those for the pair methods)."""
        kept = [t for t in self.traces if (t.metadata or {}).get("role") != "rejected"]
        if len(kept) != len(self.traces):
            log.info("%s: %d rejected pair traces left out (only pair methods train on them)", self.path,
                     len(self.traces) - len(kept))
        return TraceData(self.path, self.sha256, kept)


def load_trace_data(path: str | Path) -> TraceData:
    """Read and validate a trace file (errors name the line), and hash its bytes so a run records what it saw."""
    path = Path(path)
    traces = []
    for lineno, obj in iter_json_lines(path):
        try:
            trace = Trace.model_validate(obj)
        except ValidationError as e:
            raise validation_error(e, path, lineno) from None
        if not trace.reasoning.strip():
            raise InputError("empty reasoning: nothing to distill", path=path, line=lineno, field="reasoning")
        traces.append(trace)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return TraceData(path=path.resolve(), sha256=digest.hexdigest(), traces=traces)
