"""Accuracy from per-sample results: greedy accuracy, maj@k and pass@k, overall and by number of steps.

Every accuracy is a proportion of problems and comes with its 95% Wilson interval (rdistill.stats) and its n
(problems, not samples). With one sample per problem the headline accuracy is that sample's; with k samples it
is maj@k (the most common extracted answer, ties to the earliest), and pass@k (any sample correct) and mean
per-sample accuracy (each problem's share of right samples, averaged) sit beside it. The summary also counts the
answers cut off at max_tokens, which are usually wrong for that reason alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdistill.answers import judge
from rdistill.records import EvalResult
from rdistill.stats import proportion


@dataclass(frozen=True)
class ProblemOutcome:
    problem_id: str
    samples: int
    first_correct: bool
    majority_answer: str | None
    majority_correct: bool
    any_correct: bool
    sample_accuracy: float
    difficulty: int | None

    @property
    def headline_correct(self) -> bool:
        return self.majority_correct if self.samples > 1 else self.first_correct


def group_by_problem(results: list[EvalResult]) -> dict[str, list[EvalResult]]:
    groups: dict[str, list[EvalResult]] = {}
    for result in results:
        groups.setdefault(result.problem_id, []).append(result)
    for samples in groups.values():
        samples.sort(key=lambda r: r.sample_index)
    return groups


def majority_answer(samples: list[EvalResult]) -> str | None:
    """The most common extracted answer, equal forms merged by the shared checker (0.5 == 1/2)."""
    clusters: list[list[str]] = []
    for result in samples:
        if result.extracted is None:
            continue
        for cluster in clusters:
            if judge(result.extracted, cluster[0], result.answer_type, result.choices):
                cluster.append(result.extracted)
                break
        else:
            clusters.append([result.extracted])
    if not clusters:
        return None
    return max(clusters, key=len)[0]  # max keeps the first of equal sizes: ties go to the earliest answer


def outcome(samples: list[EvalResult]) -> ProblemOutcome:
    first = samples[0]
    majority = majority_answer(samples) if len(samples) > 1 else first.extracted
    majority_correct = (judge(majority, first.answer, first.answer_type, first.choices) if majority is not None
                        else False) if len(samples) > 1 else first.correct
    return ProblemOutcome(problem_id=first.problem_id, samples=len(samples), first_correct=first.correct,
                          majority_answer=majority, majority_correct=majority_correct,
                          any_correct=any(r.correct for r in samples),
                          sample_accuracy=sum(r.correct for r in samples) / len(samples), difficulty=first.difficulty)


def outcomes(results: list[EvalResult]) -> list[ProblemOutcome]:
    return [outcome(samples) for samples in group_by_problem(results).values()]


def rate(values: list[float]) -> dict:
    """{"value", "ci": [lo, hi], "n"}: the share of problems right (one value in [0, 1] per problem) with its 95%
    Wilson interval, which unlike a bootstrap is not zero-wide at 0/n and n/n."""
    return proportion(values)


def truncation(results: list[EvalResult]) -> dict:
    """{"cut_off", "known", "answers"}: answers cut off at max_tokens, among those whose finish is known (result
    files written before `truncated` was recorded, and failed calls, do not say)."""
    known = [r.truncated for r in results if r.truncated is not None]
    return {"cut_off": sum(known), "known": len(known), "answers": len(results)}


def accuracy_summary(results: list[EvalResult]) -> dict:
    per_problem = outcomes(results)
    k = max((o.samples for o in per_problem), default=1)
    summary = {
        "n_problems": len(per_problem),
        "samples": k,
        "accuracy": rate([float(o.headline_correct) for o in per_problem]),
        "unanswered": sum(1 for r in results if r.extracted is None),
        "errors": sum(1 for r in results if r.metadata.get("error")),
        "truncated": truncation(results),
        "by_steps": accuracy_by_steps(per_problem),
    }
    if k > 1:
        summary[f"maj@{k}"] = summary["accuracy"]
        summary[f"pass@{k}"] = rate([float(o.any_correct) for o in per_problem])
        summary["sample_accuracy"] = rate([o.sample_accuracy for o in per_problem])
    return summary


def accuracy_by_steps(per_problem: list[ProblemOutcome]) -> list[dict]:
    """[{"steps": s, "value", "ci", "n"}] for each difficulty present, in increasing order."""
    groups: dict[int, list[float]] = {}
    for o in per_problem:
        if o.difficulty is not None:
            groups.setdefault(o.difficulty, []).append(float(o.headline_correct))
    return [{"steps": steps, **rate(groups[steps])} for steps in sorted(groups)]
