"""Generation strategies, one file each, chosen by name: cot, rationalize, orca, domain:NAME, contrastive."""

from __future__ import annotations

from rdistill.errors import UnknownNameError
from rdistill.generate.options import GenerationOptions
from rdistill.generate.strategies.base import SampledStrategy, Strategy
from rdistill.generate.templates import Templates

STRATEGY_NAMES = ("cot", "rationalize", "orca", "domain:NAME", "contrastive")

__all__ = ["STRATEGY_NAMES", "SampledStrategy", "Strategy", "make_strategy"]


def make_strategy(spec: str, options: GenerationOptions, templates: Templates) -> Strategy:
    name, _, argument = spec.strip().partition(":")
    if name == "domain":
        from rdistill.generate.strategies.domain import DomainPrompted

        if not argument:
            raise UnknownNameError("domain (write domain:NAME)", "", list(templates.domains))
        return DomainPrompted(argument, options, templates)
    if argument:
        raise UnknownNameError("strategy", spec, list(STRATEGY_NAMES))
    if name == "cot":
        from rdistill.generate.strategies.cot import ChainOfThought

        return ChainOfThought(options, templates)
    if name == "rationalize":
        from rdistill.generate.strategies.rationalize import Rationalize

        return Rationalize(options, templates)
    if name == "orca":
        from rdistill.generate.strategies.orca import OrcaStyles

        return OrcaStyles(options, templates)
    if name == "contrastive":
        from rdistill.generate.strategies.contrastive import Contrastive

        return Contrastive(options, templates)
    raise UnknownNameError("strategy", spec, list(STRATEGY_NAMES))
