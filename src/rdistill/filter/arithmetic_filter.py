"""Arithmetic filter: every claim of every step re-computed by the step checker (`rdistill.steps`).

A trace with one wrong step is dropped even when its final answer is right: a student trained on it
learns that wrong arithmetic leads to right answers. Claims the checker cannot follow (unit conversions,
anything with a variable) are neither right nor wrong and never drop a trace.
"""

from __future__ import annotations

from rdistill.filter.facts import TraceFacts
from rdistill.filter.verdicts import PASS, FilterVerdict, drop


def arithmetic_holds(f: TraceFacts) -> FilterVerdict:
    report = f.step_report
    step = report.first_wrong_step
    if step is None:
        return PASS
    claim = next(c for c in report.claims if c.step == step and c.wrong)
    return drop("wrong_arithmetic", first_wrong_step=step, step_text=report.steps[step - 1][:300],
                claim=claim.text[:200], expression=claim.expression, claimed=claim.claimed,
                computed=claim.computed, n_steps=report.n_steps)
