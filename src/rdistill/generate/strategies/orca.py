"""`orca`: one problem explained under several system prompts (Orca's explanation tuning), so the student sees
the same reasoning told in different styles. Sample k uses style k mod (number of styles); by default there is
one sample per style. Styles are the `orca.styles` of the templates file, so users add or edit them there."""

from __future__ import annotations

from rdistill.generate.strategies.base import SampledStrategy, choices_text
from rdistill.generate.templates import render
from rdistill.generate.trace_builder import Prompt
from rdistill.records import Problem


class OrcaStyles(SampledStrategy):
    name = "orca"

    def samples(self) -> int:
        return self.options.samples or len(self.templates.orca_styles)

    def prompt(self, problem: Problem, sample_index: int) -> Prompt:
        styles = list(self.templates.orca_styles.items())
        style, system = styles[sample_index % len(styles)]
        user = render(self.templates.orca_user, question=problem.question, choices=choices_text(problem))
        return Prompt(user=user, system=system, style=style, metadata={"domain": problem.domain})
