"""A run folder as the report reads it, made by really evaluating two tiny random transformers models (one as the
baseline under both prompts, one as the student) and saving a real teacher ledger beside the results."""

from __future__ import annotations

from pathlib import Path

from support.tiny_lm import save_tiny_lm


def make_run_folder(root: Path) -> Path:
    from rdistill.evaluate.comparison import evaluate_baseline
    from rdistill.evaluate.options import EvalOptions
    from rdistill.evaluate.problems import load_problems
    from rdistill.evaluate.runner import evaluate
    from rdistill.teachers.ledger import Ledger

    run = root / "run"
    problems = load_problems("synth:arithmetic", limit=6, steps="1-3")
    options = EvalOptions(max_tokens=10, faithfulness_n=2, early_answer_tokens=4)
    cache = root / "cache.sqlite"
    baseline = save_tiny_lm(root / "base-model", seed=1)
    student = save_tiny_lm(root / "student-model", seed=2)
    both = evaluate_baseline(str(baseline), problems, bench="synth:arithmetic", options=options, cache=cache)
    both.plain.write(run / "results" / "baseline.plain.jsonl")
    both.teacher.write(run / "results" / "baseline.teacher.jsonl")
    evaluate(str(student), problems, bench="synth:arithmetic", options=options, cache=cache).write(
        run / "results" / "student.jsonl")
    ledger = Ledger()
    ledger.record_call("openai:gpt-4o-mini", prompt_tokens=12000, completion_tokens=30000, cost_usd=0.0198,
                       seconds=40.0, priced=True)
    ledger.save(run / "ledger.json")
    return run
