"""`rationalize`: the teacher sees the question and the correct answer and writes the reasoning that leads to
it (the rationale labels of Distilling Step-by-Step; STaR's rationalization for problems the model got
wrong). Traces are marked `hinted`; the answer is still extracted and checked, because a teacher can argue
its way to a different number even with the right one in view."""

from __future__ import annotations

from rdistill.errors import InputError
from rdistill.generate.strategies.base import SampledStrategy, choices_text
from rdistill.generate.trace_builder import Prompt
from rdistill.generate.voting import has_gold
from rdistill.records import Problem


class Rationalize(SampledStrategy):
    name = "rationalize"
    votes = False  # every sample was told the answer: agreement among them says nothing

    def __init__(self, options, templates):
        super().__init__(options, templates)
        if options.adaptive:
            raise InputError("adaptive sampling votes on independent answers; rationalize gives the teacher the "
                             "answer, so it cannot be adaptive", field="adaptive")

    def check_problem(self, problem: Problem) -> None:
        if not has_gold(problem):
            raise InputError(f"problem {problem.id!r} has no gold answer, and rationalize needs one",
                             field="answer")

    def prompt(self, problem: Problem, sample_index: int) -> Prompt:
        domain = problem.domain if problem.domain in self.templates.rationalize else "general"
        system, user = self.templates.rationalize_for(domain).render(
            question=problem.question, choices=choices_text(problem), answer=problem.answer)
        return Prompt(user=user, system=system, hinted=True, metadata={"domain": domain})
