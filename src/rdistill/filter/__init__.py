"""The filter stage: keep only teacher traces worth training on, and say why each other one was dropped.

`filter_traces(traces, config) -> (kept, FilterReport)` is the API; `judge_traces` gives the decision
for every trace, `filter_file` works on JSONL files (the `rdistill filter` command). One module per
filter family (answers, lengths, arithmetic, grounding, duplicates, symbolic, code); each returns a
`FilterVerdict` with a reason code from `REASONS`. `sandbox.run_python` is usable on its own.
"""

from rdistill.filter.config import FilterConfig
from rdistill.filter.files import filter_file
from rdistill.filter.pipeline import Decision, filter_traces, judge_traces
from rdistill.filter.report import FilterReport
from rdistill.filter.sandbox import SandboxLimits, SandboxResult, run_python
from rdistill.filter.verdicts import REASONS, FilterVerdict

__all__ = ["REASONS", "Decision", "FilterConfig", "FilterReport", "FilterVerdict", "SandboxLimits", "SandboxResult",
           "filter_file", "filter_traces", "judge_traces", "run_python"]
