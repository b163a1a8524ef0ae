"""What the filters need to know about one trace, each worked out once and only when asked for."""

from __future__ import annotations

from functools import cached_property

from rdistill.answers import extract_answer
from rdistill.records import Trace
from rdistill.steps import StepReport, check_steps, split_steps


class TraceFacts:
    def __init__(self, trace: Trace):
        self.trace = trace

    @property
    def has_gold(self) -> bool:
        return bool(self.trace.answer.strip())

    @property
    def answer_type(self) -> str | None:
        """The trace's answer type; None (infer from the answers) when "text" was only inferred from a
        missing gold answer, so that votes over "0.5" and "1/2" still compare as numbers."""
        t = self.trace
        return t.answer_type if self.has_gold or t.answer_type != "text" else None

    @cached_property
    def predicted(self) -> str | None:
        """The trace's final answer in canonical form, or None when it has no well-formed one.

        A stored `predicted_answer` is trusted as the answer but must still read as the trace's answer
        type (a numeric trace answering "twelve" has none); without one, it is read from the reasoning.
        """
        t = self.trace
        text = t.predicted_answer if t.predicted_answer is not None else t.reasoning
        return extract_answer(text, self.answer_type, t.choices)

    @cached_property
    def step_report(self) -> StepReport:
        return check_steps(self.trace.reasoning)

    @cached_property
    def steps(self) -> list[str]:
        """The trace's own steps when generation stored them, else the reasoning split by the step parser."""
        return list(self.trace.steps) or split_steps(self.trace.reasoning)
