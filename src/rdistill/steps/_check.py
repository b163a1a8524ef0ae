"""Entry points of the step checker: `check_steps`, `find_claims` and `first_wrong_step`.

They tie the parts together: split into steps (`_split`), tokenize (`_tokens`), read and judge every
"=" chain (`_chains`), and count checked and valid steps into a `StepReport`.
"""

from __future__ import annotations

from dataclasses import replace

from rdistill.errors import InputError
from rdistill.steps._chains import _chain_claims
from rdistill.steps._claims import Claim, StepReport
from rdistill.steps._split import split_steps
from rdistill.steps._tokens import ANNOT, _tokenize

DEFAULT_REL_TOL = 1e-4

def check_steps(reasoning: str, rel_tol: float = DEFAULT_REL_TOL) -> StepReport:
    """Split `reasoning` into steps and re-compute every claim of every step."""
    _check_rel_tol(rel_tol)
    steps = split_steps(reasoning)
    claims: list[Claim] = []
    n_checked = n_valid = 0
    first_wrong = None
    for index, step in enumerate(steps, start=1):
        step_claims = [replace(c, step=index) for c in find_claims(step, rel_tol=rel_tol)]
        claims.extend(step_claims)
        if not any(c.checked for c in step_claims):
            continue  # unchecked: neither valid nor wrong
        n_checked += 1
        if any(c.wrong for c in step_claims):
            first_wrong = first_wrong or index
        else:
            n_valid += 1
    return StepReport(steps=steps, claims=claims, first_wrong_step=first_wrong, n_steps=len(steps),
                      n_checked_steps=n_checked, n_valid_steps=n_valid)


def _check_rel_tol(rel_tol: float) -> None:
    if not rel_tol >= 0:  # also refuses NaN
        raise InputError(f"must be a number >= 0, got {rel_tol!r}", field="rel_tol")


def first_wrong_step(reasoning: str) -> int | None:
    """The 1-based index of the first step with wrong arithmetic, or None."""
    return check_steps(reasoning).first_wrong_step


def find_claims(text: str, *, rel_tol: float = DEFAULT_REL_TOL) -> list[Claim]:
    """The arithmetic claims in one text, in reading order, each with step=0."""
    _check_rel_tol(rel_tol)
    tokens = _tokenize(text)
    found: list[tuple[int, Claim]] = []
    for token in tokens:
        if token.kind == ANNOT:
            inner = token.text[2:-2] + (f"={token.digits}" if token.digits else "")
            found += [(token.start, replace(c, text=text[token.start:token.end]))
                      for _, c in _chain_claims(inner, _tokenize(inner, math_only=True), rel_tol)]
    found += _chain_claims(text, tokens, rel_tol)
    found.sort(key=lambda pair: pair[0])
    return [claim for _, claim in found]
