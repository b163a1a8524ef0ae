"""Code filter: the Python a trace writes must run, in the sandbox, and print the answer.

The trace's ```python blocks (also ```py, ```python3) are joined in order into one program, as in a
notebook, and run by `rdistill.filter.sandbox.run_python`. Its stdout is read by the shared answer
checker and judged against the gold answer, or against the trace's own answer where there is no gold.
Traces without a Python block pass.
"""

from __future__ import annotations

import re

from rdistill.answers import check
from rdistill.filter.facts import TraceFacts
from rdistill.filter.sandbox import SandboxLimits, run_python
from rdistill.filter.verdicts import PASS, FilterVerdict, drop

_PYTHON_BLOCK = re.compile(r"```[ \t]*(?:python3?|py)[ \t]*\n(.*?)```", re.IGNORECASE | re.DOTALL)


def python_blocks(text: str) -> list[str]:
    return [m.group(1) for m in _PYTHON_BLOCK.finditer(text)]


def code_agrees(f: TraceFacts, limits: SandboxLimits) -> FilterVerdict:
    t = f.trace
    blocks = python_blocks(t.reasoning)
    if not blocks:
        return PASS
    result = run_python("\n\n".join(blocks), limits)
    if not result.ok:
        return drop("code_failed", failure=result.failure, stderr_tail=result.stderr[-500:], blocks=len(blocks))
    expected = t.answer if f.has_gold else f.predicted
    if expected is None:
        return PASS  # nothing to compare with; the answer filters deal with a missing answer
    verdict = check(result.stdout, expected, f.answer_type, t.choices)
    if not verdict.correct:
        return drop("code_mismatch", printed=result.stdout[-300:], extracted=verdict.extracted, expected=expected)
    return PASS
