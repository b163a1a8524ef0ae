"""Built-in reasoning tasks with exact gold answers and gold step-by-step solutions.

    generate("arithmetic", 1000, seed=0, split="train", steps=(1, 6))

Each family (arithmetic word problems, last-letter concatenation, coin flips, date arithmetic) builds
problems whose difficulty is the number of reasoning steps. The split of a problem is decided by a hash
of its question text, so train, validation and test never share a question whatever the seeds used.
Step counts are balanced across the requested range; a step count whose question space is too small
(one-word last-letter problems, say) hands its shortfall on to the next, larger step count.
"""

from __future__ import annotations

import importlib
import json
import logging
import random
import re
from types import ModuleType
from typing import Any

from rdistill.data.synth._base import SPLITS, Candidate, normalise_question, split_of
from rdistill.errors import UnknownNameError
from rdistill.records import Problem, stable_id

log = logging.getLogger(__name__)

# Modules are imported on first use: listing the tasks (CLI help, error messages) should stay cheap.
TASKS: dict[str, str] = {
    "arithmetic": "rdistill.data.synth.arithmetic",
    "last_letters": "rdistill.data.synth.last_letters",
    "coin_flip": "rdistill.data.synth.coin_flip",
    "date_arith": "rdistill.data.synth.date_arith",
    "facts": "rdistill.data.synth.facts",
}

# Draws in a row that yield nothing new before a step count is declared exhausted. A split holding 10% of
# the questions misses 2000 times in a row with probability 0.9**2000, i.e. never by chance.
_MAX_MISSES_IN_A_ROW = 2000

__all__ = ["SPLITS", "TASKS", "check_steps_range", "generate", "load_task", "parse_steps_range", "split_of"]


def load_task(task: str) -> ModuleType:
    if task not in TASKS:
        raise UnknownNameError("task", task, list(TASKS))
    return importlib.import_module(TASKS[task])


def parse_steps_range(text: str, *, task: str = "arithmetic") -> tuple[int, int]:
    """'1-6' -> (1, 6), '3' -> (3, 3); checked against the task's own maximum step count."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if match is None:
        raise ValueError(f"steps must look like '3' or '1-6', got {text!r}")
    lo = int(match.group(1))
    hi = int(match.group(2)) if match.group(2) is not None else lo
    return check_steps_range((lo, hi), task)


def check_steps_range(steps: tuple[int, int], task: str) -> tuple[int, int]:
    family = load_task(task)
    try:
        lo, hi = steps
    except (TypeError, ValueError):
        raise ValueError(f"steps must be a (min, max) pair, got {steps!r}") from None
    if not (isinstance(lo, int) and isinstance(hi, int)) or isinstance(lo, bool) or isinstance(hi, bool):
        raise ValueError(f"steps must be whole numbers, got {steps!r}")
    if not 1 <= lo <= hi <= family.MAX_STEPS:
        raise ValueError(f"steps range {lo}-{hi} is invalid for task {task!r}: "
                         f"need 1 <= min <= max <= {family.MAX_STEPS}")
    return lo, hi


def generate(task: str, n: int, *, seed: int = 0, split: str = "train", steps: tuple[int, int] = (1, 4),
             **options: Any) -> list[Problem]:
    """`n` distinct problems of `task` belonging to `split`, reproducible from the arguments alone."""
    family = load_task(task)
    lo, hi = check_steps_range(steps, task)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a whole number >= 0, got {n!r}")
    settings = _resolve_options(family, options)
    # A string seed is hashed with SHA-512 by `random`, so the stream is the same in every process.
    seed_text = f"rdistill.synth|{task}|{split}|{seed}|{json.dumps(settings, sort_keys=True)}"

    seen: set[str] = set()  # only tested for membership, never iterated: its order cannot leak out
    problems: list[Problem] = []
    shortfall = 0
    for count, quota in _balanced_quotas(n, lo, hi).items():
        wanted = quota + shortfall
        # One stream per step count: asking for more problems extends each step count's list.
        rng = random.Random(f"{seed_text}|steps={count}")
        made = _draw_distinct(family, rng, count, wanted, split, settings, seen)
        shortfall = wanted - len(made)
        if shortfall:
            log.warning("task %s: only %d distinct %s problems of %d steps exist; %d more of longer ones instead",
                        task, len(made), split, count, shortfall)
        problems.extend(_to_problem(task, family, candidate, count, split) for candidate in made)
    if shortfall:
        raise ValueError(f"could only make {n - shortfall} distinct {split} problems for task {task!r} "
                         f"with {lo}-{hi} steps, not {n}; widen the steps range or ask for fewer")
    random.Random(f"{seed_text}|order").shuffle(problems)
    log.debug("generated %d %s problems of task %s", len(problems), split, task)
    return problems


def _resolve_options(family: ModuleType, options: dict[str, Any]) -> dict[str, Any]:
    settings = dict(family.OPTIONS)
    for key, value in options.items():
        if key not in settings:
            raise UnknownNameError("option", key, list(settings) or ["(this task takes no options)"])
        expected = type(settings[key])
        if type(value) is not expected:
            raise ValueError(f"option {key} must be {expected.__name__}, got {value!r}")
        settings[key] = value
    check = getattr(family, "check_options", None)
    if check is not None:
        check(settings)
    return settings


def _balanced_quotas(n: int, lo: int, hi: int) -> dict[int, int]:
    """Split n evenly over the step counts lo..hi, the remainder going to the smallest counts."""
    width = hi - lo + 1
    return {count: n // width + (1 if i < n % width else 0) for i, count in enumerate(range(lo, hi + 1))}


def _draw_distinct(family: ModuleType, rng: random.Random, count: int, wanted: int, split: str,
                   settings: dict[str, Any], seen: set[str]) -> list[Candidate]:
    made: list[Candidate] = []
    misses = 0
    while len(made) < wanted and misses < _MAX_MISSES_IN_A_ROW:
        candidate = family.make_candidate(rng, count, settings)
        key = normalise_question(candidate.question) if candidate is not None else None
        if key is None or key in seen or split_of(candidate.question) != split:
            misses += 1
            continue
        seen.add(key)
        made.append(candidate)
        misses = 0
    return made


def _to_problem(task: str, family: ModuleType, candidate: Candidate, count: int, split: str) -> Problem:
    lines = [f"Step {i}: {line}" for i, line in enumerate(candidate.steps, start=1)]
    lines.append(f"The answer is {candidate.answer}.")
    return Problem(
        id=f"{task}-{stable_id(normalise_question(candidate.question))}",
        question=candidate.question,
        answer=candidate.answer,
        answer_type=family.ANSWER_TYPE,
        solution="\n".join(lines),
        domain=family.DOMAIN,
        difficulty=count,
        source=f"synth:{task}",
        split=split,
        metadata={"task": task, "steps": count, **candidate.metadata},
    )
