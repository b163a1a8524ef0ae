"""`domain:NAME`: chain-of-thought under one domain's system prompt (math, code, legal, medical, or any domain
a templates file adds), whatever the problem's own domain. The domain is recorded in `metadata.domain`, which
the filter stage reads: math traces go through the arithmetic step checker, code traces through the sandbox
(the code template asks for a Python program that prints the answer, in a ```python block)."""

from __future__ import annotations

from rdistill.errors import UnknownNameError
from rdistill.generate.strategies.cot import ChainOfThought
from rdistill.records import Problem


class DomainPrompted(ChainOfThought):
    def __init__(self, domain: str, options, templates):
        super().__init__(options, templates)
        if domain not in templates.domains:
            raise UnknownNameError("domain", domain, list(templates.domains))
        self.domain = domain
        self.name = f"domain:{domain}"

    def domain_of(self, problem: Problem) -> str:
        return self.domain
