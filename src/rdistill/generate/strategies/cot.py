"""`cot`: chain-of-thought samples in the problem's own domain template (terse "a op b = c" steps for math)."""

from __future__ import annotations

from rdistill.generate.strategies.base import SampledStrategy, choices_text
from rdistill.generate.trace_builder import Prompt
from rdistill.records import Problem


class ChainOfThought(SampledStrategy):
    name = "cot"

    def domain_of(self, problem: Problem) -> str:
        # A domain without its own template (e.g. "commonsense") is answered with the general one.
        return problem.domain if problem.domain in self.templates.domains else "general"

    def prompt(self, problem: Problem, sample_index: int) -> Prompt:
        domain = self.domain_of(problem)
        system, user = self.templates.for_domain(domain).render(question=problem.question,
                                                                choices=choices_text(problem))
        return Prompt(user=user, system=system, metadata={"domain": domain})
