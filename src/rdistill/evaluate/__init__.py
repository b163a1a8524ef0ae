"""Evaluation: run any model on benchmarks or built-in tasks, judge its answers with the shared checker, and
measure how it reasons (steps, arithmetic validity, faithfulness, coherence).

    from rdistill.evaluate import EvalOptions, evaluate, load_problems
    problems = load_problems("gsm8k", path="data/gsm8k/test.jsonl", limit=50)
    run = evaluate("offline:smollm2-135m-instruct", problems, bench="gsm8k", options=EvalOptions())
    run.write("results/smollm2.gsm8k.jsonl")   # EvalResult JSONL + results/smollm2.gsm8k.summary.json

Modules are imported on first use so that `import rdistill.evaluate` stays cheap.
"""

from __future__ import annotations

from rdistill._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "EvalOptions": "rdistill.evaluate.options",
    "EvalRun": "rdistill.evaluate.runner",
    "evaluate": "rdistill.evaluate.runner",
    "open_model": "rdistill.evaluate.runner",
    "load_problems": "rdistill.evaluate.problems",
    "evaluate_baseline": "rdistill.evaluate.comparison",
    "compare": "rdistill.evaluate.comparison",
    "load_result_set": "rdistill.evaluate.comparison",
    "accuracy_summary": "rdistill.evaluate.accuracy",
    "aggregate_quality": "rdistill.evaluate.metrics",
})
