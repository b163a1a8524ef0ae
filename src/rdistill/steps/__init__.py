r"""Split a reasoning trace into steps and re-compute the arithmetic each step claims.

Used by the trace filters (drop a trace with a wrong step even when its final answer is right), by
evaluation (arithmetic validity: the share of checked steps whose claims re-compute) and by contrastive
generation (the first wrong step of a negative trace).

What counts as a claim: an "=" (or "≈") between two numeric expressions, e.g. "5 apples + 3 apples =
8 apples", "$1,200 * 15% = $180", "$\frac{3}{4} \times 8 = 6$", and every GSM8K calculator annotation
"<<48/2=24>>" (the number echoed right after an annotation is its own result and is not read again).
Chains link each expression to the latest computed one: in "2 + 10 = 5 + 7 = 12" both links are
checked; in the running style "3 * 4 = 12 * 2 = 24" the middle expression starts with the value so far,
so it reads as "3 * 4 = 12" then "12 * 2 = 24". Values are exact Fractions, evaluated by walking a
Python `ast` limited to numbers and + - * / ** (never `eval`).

A wrong "wrong" costs more than a missed one, so:
- a plain number on the left names what follows ("1 dozen = 12", "4 subjects = 186 + 62") and a bare
  fraction said to equal a number of 1 or more is a label ("1/2 = 41 fish"): neither is a claim;
- anything holding a variable or an unknown function ("2x + 3 = 11", "\sqrt{16} = 4") is skipped whole,
  never cut down to its computable tail, and neither is the tail of a longer expression;
- dates (2023-05-01, 05/01/2023), times and ratios (3:45, 3:2), phone numbers (555-123-4567), ranges
  written "5-7" (glued, first number smaller), codes with a leading zero (0900), ordinals (3rd),
  identifiers (x2, H2O) and step or list numbering ("Step 1:", "1.", "2)") are not operands;
- unit words after a number are skipped ("5 apples", "$5"); a failing link whose numbers carry two
  different units ("1 hour + 30 minutes = 90 minutes") is a conversion we cannot follow, so the claim
  is kept as unchecked (computed None), not wrong.
Numbers may carry thousands commas (1,200), spaces before a final 000 group (80 000), "$", "%", "..."
and be written as fractions: a glued proper fraction is one number ("28 / 1/5 = 140"), as are mixed
numbers ("2 1/2", "1½").

Percent: "20%" reads as 0.2, so "20% of 50 = 10" and "1/5 = 20%" hold. When that reading fails, "%" is
read as a unit label (20% as 20), but only where writers use it so: when only the claimed side has "%"
("0.2 * 100 = 20%"), when every number in the link is a percentage ("100% - 20% = 80%"), or when the
only percentage computed with is 100% ("1.2 x 100% = 120"). So "50 * 20% = 1000" is wrong.

Rounding: a claimed number with d decimals holds when the exact value rounds (either way on a tie) or
truncates to it at d decimals ("10 / 3 = 3.33", "2/3 = 0.66"). A claimed whole number must be exact,
unless the exact value has no finite decimal form ("100 / 3 = 33" holds, "7 / 2 = 3" does not). Anything
within `rel_tol` of the exact value holds. A "≈" link allows one unit of the last decimal, or 1%.

Layout (private modules, re-exported here so that `from rdistill.steps import X` keeps working): `_split`
(steps), `_claims` (`Claim`, `StepReport`), `_check` (the entry points), `_evaluate` (exact arithmetic),
`_tokens` (tokenizer), `_parser` (expressions) and `_chains` (judging "=" chains).
"""

from __future__ import annotations

from rdistill.steps._check import DEFAULT_REL_TOL, check_steps, find_claims, first_wrong_step
from rdistill.steps._claims import Claim, StepReport
from rdistill.steps._evaluate import evaluate_expression
from rdistill.steps._split import split_steps

__all__ = ["DEFAULT_REL_TOL", "Claim", "StepReport", "check_steps", "evaluate_expression", "find_claims",
           "first_wrong_step", "split_steps"]
