"""What to evaluate on: a benchmark by name, a built-in task (`synth:arithmetic`), or a problems JSONL file.

Also the difficulty of a problem in reasoning steps, used for accuracy by number of steps: the built-in tasks
know it exactly; for benchmarks it is read from the gold solution (GSM8K's lines, StrategyQA's decomposition).
"""

from __future__ import annotations

import logging
from pathlib import Path

from rdistill.errors import InputError
from rdistill.records import Problem

log = logging.getLogger(__name__)

SYNTH_PREFIX = "synth:"
DEFAULT_SYNTH_N = 100  # problems drawn for a built-in task when no --limit is given


def load_problems(bench: str, *, path: str | Path | None = None, split: str = "test", limit: int | None = None,
                  seed: int = 0, steps: str | tuple[int, int] = "1-6") -> list[Problem]:
    """Problems for `bench`: a benchmark name (local `path` or the hub), `synth:TASK`, or a .jsonl file."""
    if limit is not None and limit < 1:
        raise InputError(f"must be >= 1, got {limit}", field="limit")
    if bench.startswith(SYNTH_PREFIX):
        return _synth(bench.removeprefix(SYNTH_PREFIX), split=split, limit=limit, seed=seed, steps=steps)
    if bench.endswith(".jsonl"):
        from rdistill.jsonl import load_records

        problems = load_records(bench, Problem)
        return problems[:limit] if limit else problems
    from rdistill.data.benchmarks import load_benchmark

    return load_benchmark(bench, split=split, path=path, limit=limit)


def bench_label(bench: str) -> str:
    """The name results carry: the benchmark or task name, or a problems file's stem."""
    return Path(bench).stem if bench.endswith(".jsonl") else bench


def _synth(task: str, *, split: str, limit: int | None, seed: int, steps: str | tuple[int, int]) -> list[Problem]:
    from rdistill.data.synth import check_steps_range, generate, parse_steps_range

    try:
        step_range = parse_steps_range(steps, task=task) if isinstance(steps, str) else check_steps_range(steps, task)
        return generate(task, limit or DEFAULT_SYNTH_N, seed=seed, split=split, steps=step_range)
    except ValueError as e:
        raise InputError(str(e), field="steps") from None


def problem_steps(problem: Problem) -> int | None:
    """How many reasoning steps the problem takes: its difficulty, else the count in its gold solution."""
    if problem.difficulty is not None:
        return problem.difficulty
    decomposition = problem.metadata.get("decomposition") if isinstance(problem.metadata, dict) else None
    if isinstance(decomposition, list) and decomposition:
        return len(decomposition)  # StrategyQA: the annotated sub-questions
    if problem.solution and problem.answer_type == "numeric":
        from rdistill.steps import split_steps

        # GSM8K-style solutions write one step per line; long prose solutions (MATH) are not counted.
        return len(split_steps(problem.solution)) or None
    return None
