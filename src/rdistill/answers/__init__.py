"""Answers: infer their type, pull them out of free-form reasoning, and judge them against gold.

One package serves data filtering, training rewards and evaluation, so all three agree on what
"correct" means. Everything here is pure and thread-safe; `math_verify` (and with it sympy) is
imported lazily, only when a symbolic comparison is actually needed.

Conventions worth knowing:
- Extraction takes the *last* explicit answer (`\\boxed{}`, "The answer is", "Answer:", "####",
  `<answer>` tags...). A bare last number is only a fallback when no explicit answer exists.
- Numeric answers are returned in a canonical form ("$1,234.50" -> "1234.5"); a percent sign is kept
  ("45%") because 45% may be compared with 0.45. Units and currency are dropped.
- Numeric equality is exact (Fractions): 0.5 == 1/2, but 12 != 12.5 and 0.333 != 1/3.

Layout (private modules, re-exported here so that `from rdistill.answers import X` keeps working):
`_clean` (unwrapping, text forms, limits), `_numbers` (exact number parsing and formatting), `_infer`
(answer type inference), `_spans` (explicit answer markers), `_extract` (`extract_answer`), `_compare`
(`judge`, `check`) and `_mathverify` (math-verify and sympy, imported lazily).
"""

from __future__ import annotations

from rdistill.answers._compare import Verdict, check, judge
from rdistill.answers._extract import extract_answer
from rdistill.answers._infer import infer_answer_type
from rdistill.answers._mathverify import _math_verify_timeout  # noqa: F401 (tests import it from here)
from rdistill.answers._numbers import parse_number

__all__ = ["Verdict", "check", "extract_answer", "infer_answer_type", "judge", "parse_number"]
