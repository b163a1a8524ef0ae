"""Evaluation: run any model on benchmarks or built-in tasks, judge its answers with the shared checker, and
measure how it reasons (steps, arithmetic validity, faithfulness, coherence).

    from rdistill.evaluate import EvalOptions, evaluate, load_problems
    problems = load_problems("gsm8k", path="data/gsm8k/test.jsonl", limit=50)
    run = evaluate("offline:smollm2-135m-instruct", problems, bench="gsm8k", options=EvalOptions())
    run.write("results/smollm2.gsm8k.jsonl")   # EvalResult JSONL + results/smollm2.gsm8k.summary.json

Modules are imported on first use so that `import rdistill.evaluate` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvalOptions": "rdistill.evaluate.options",
    "EvalRun": "rdistill.evaluate.runner",
    "evaluate": "rdistill.evaluate.runner",
    "open_model": "rdistill.evaluate.runner",
    "load_problems": "rdistill.evaluate.problems",
    "evaluate_baseline": "rdistill.evaluate.compare",
    "compare": "rdistill.evaluate.compare",
    "load_result_set": "rdistill.evaluate.compare",
    "accuracy_summary": "rdistill.evaluate.accuracy",
    "aggregate_quality": "rdistill.evaluate.metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rdistill.evaluate' has no attribute {name!r}")
