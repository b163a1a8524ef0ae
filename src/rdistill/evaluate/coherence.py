"""Coherence: does each step follow from the problem and the steps before it?

Steps with arithmetic claims are scored by the step checker (1 when every checked claim re-computes, else 0);
the others by an optional judge model, asked once per problem for a 0-1 score per step and parsed from
"Step N: score" lines. A step neither can score stays unscored; the problem's coherence is the mean over
scored steps, with the counts of each kind kept beside it.
"""

from __future__ import annotations

import re

from rdistill.evaluate.prompts import eval_prompts
from rdistill.teachers.base import Request, SamplingParams

_SCORE_LINE = re.compile(
    r"(?im)^[\s*_#>-]*step\s*(\d+)\s*[*_]*\s*[:=\-–]\s*[*_]*\s*(\d+(?:\.\d+)?|\.\d+)(?:\s*/\s*(\d+(?:\.\d+)?))?")
JUDGE_MAX_TOKENS = 256


def checker_step_scores(report) -> dict[int, float]:
    """{step: 1.0 or 0.0} for the steps holding at least one checked claim (from steps.check_steps)."""
    scores: dict[int, float] = {}
    for claim in report.claims:
        if claim.checked and claim.step >= 1:
            scores[claim.step] = min(scores.get(claim.step, 1.0), 1.0 if claim.ok else 0.0)
    return scores


def judge_request(question: str, steps: list[str], asked: list[int]) -> Request:
    prompts = eval_prompts()["coherence_judge"]
    listing = "\n".join(f"Step {i}: {' '.join(s.split())}" for i, s in enumerate(steps, start=1))
    user = (prompts["user"].replace("{question}", question.strip()).replace("{steps}", listing)
            .replace("{asked}", ", ".join(str(i) for i in asked)))
    return Request((("system", prompts["system"]), ("user", user)),
                   SamplingParams(temperature=0.0, max_tokens=JUDGE_MAX_TOKENS, seed=0))


def parse_judge_scores(text: str, asked: list[int]) -> dict[int, float]:
    """Scores for the asked steps from "Step N: 0.8" (or "Step N: 4/5") lines; out-of-range values are dropped."""
    scores: dict[int, float] = {}
    for match in _SCORE_LINE.finditer(text or ""):
        step = int(match.group(1))
        value = float(match.group(2))
        if match.group(3) is not None:
            denominator = float(match.group(3))
            if denominator <= 0:
                continue
            value /= denominator
        if step in asked and step not in scores and 0.0 <= value <= 1.0:
            scores[step] = value
    return scores


def coherence(n_steps: int, checked: dict[int, float], judged: dict[int, float]) -> dict:
    """Mean over the scored steps, the checker's score taking precedence for a step both scored."""
    scores = {**judged, **checked}
    scored = [scores[i] for i in range(1, n_steps + 1) if i in scores]
    return {"score": sum(scored) / len(scored) if scored else None, "n_steps": n_steps,
            "n_checked": len(checked), "n_judged": len([i for i in judged if i not in checked]),
            "step_scores": {str(i): scores[i] for i in sorted(scores)}}
