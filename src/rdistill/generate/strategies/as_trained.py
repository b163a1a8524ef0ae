"""`as_trained`: the bare question under a given system prompt, the way a student is trained and evaluated.

Not a teacher strategy: the STaR loop (pipeline/star.py) uses it to let the current student answer its own
training problems exactly as it will later be asked, before the wrong ones go to rationalization."""

from __future__ import annotations

from rdistill.generate.strategies.base import SampledStrategy, choices_text
from rdistill.generate.trace_builder import Prompt
from rdistill.records import Problem


class AsTrained(SampledStrategy):
    name = "as_trained"

    def __init__(self, options, templates, *, system_prompt: str | None = None, user_prefix: str = ""):
        super().__init__(options, templates)
        self.system_prompt, self.user_prefix = system_prompt, user_prefix

    def prompt(self, problem: Problem, sample_index: int) -> Prompt:
        return Prompt(user=f"{self.user_prefix}{problem.question}{choices_text(problem)}", system=self.system_prompt)
