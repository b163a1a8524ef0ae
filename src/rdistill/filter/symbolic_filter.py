"""Symbolic filter for `answer_type == "math"` traces: the reasoning's own final answer, verified
symbolically against gold.

The answer filter trusts a stored `predicted_answer`; this one reads the answer afresh from the
reasoning as a math expression and has the shared checker (math-verify, then sympy) prove it equal
to the gold answer, so "\\frac{1}{2}" and "0.5", or "2(x+1)" and "2x+2", agree and a trace whose text
ends on something else is caught. Traces of other types, or without gold, pass.
"""

from __future__ import annotations

from rdistill.answers import extract_answer, judge
from rdistill.filter.facts import TraceFacts
from rdistill.filter.verdicts import PASS, FilterVerdict, drop


def symbolically_equal(f: TraceFacts) -> FilterVerdict:
    t = f.trace
    if t.answer_type != "math" or not f.has_gold:
        return PASS
    answer = extract_answer(t.reasoning, "math", t.choices)
    if answer is None:
        return drop("symbolic_mismatch", predicted=None, gold=t.answer, note="no math answer in the reasoning")
    if not judge(answer, t.answer, "math", t.choices):
        return drop("symbolic_mismatch", predicted=answer, gold=t.answer)
    return PASS
