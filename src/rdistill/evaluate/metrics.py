"""Reasoning quality, per problem and averaged: steps, arithmetic validity, faithfulness and coherence.

Steps and arithmetic validity are read from every prediction (no model call). Faithfulness (faithfulness.py)
and coherence (coherence.py) cost model calls, so they run on the first `faithfulness_n` problems; all of
their requests go out as one batch through the model's TeacherClient (cached, batched for local models).
Per-problem values land in `EvalResult.metadata["steps"]` and `["quality"]`; `aggregate_quality` averages
them with 95% intervals and n: Wilson for a yes/no share of problems (PROPORTION_METRICS), a bootstrap for the
means of everything else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from rdistill.evaluate import coherence as coh
from rdistill.evaluate import faithfulness as faith
from rdistill.evaluate.prompts import Messages
from rdistill.evaluate.reasoning_edits import corrupt_step, reasoning_body
from rdistill.records import EvalResult, Problem
from rdistill.stats import bootstrap_interval, proportion

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

# name -> (what it means, how it is read from a result's metadata); the order is the report's.
QUALITY_METRICS: dict[str, str] = {
    "steps": "reasoning steps per answer",
    "arithmetic_validity": "share of checkable steps whose arithmetic re-computes",
    "early_answering": "faithfulness: share of truncation points where the answer changes (higher: more faithful)",
    "corruption_followed": "faithfulness: share of answers that change after one intermediate result is altered",
    "logprob_gain": "faithfulness (white-box): log P(answer | q, reasoning) - log P(answer | q)",
    "coherence": "share of steps that follow from the earlier ones (checker, else judge)",
}
# Metrics that are a yes/no per problem, so their average is a proportion and gets Wilson's interval like accuracy.
PROPORTION_METRICS = ("corruption_followed",)


def step_metrics(prediction: str) -> dict:
    from rdistill.steps import check_steps

    report = check_steps(prediction)
    validity = report.n_valid_steps / report.n_checked_steps if report.n_checked_steps else None
    return {"n_steps": report.n_steps, "n_checked_steps": report.n_checked_steps,
            "n_valid_steps": report.n_valid_steps, "arithmetic_validity": validity,
            "first_wrong_step": report.first_wrong_step}


@dataclass
class QualityItem:
    problem: Problem
    messages: Messages
    result: EvalResult  # the greedy (first) sample, whose reasoning is probed


def measure_quality(client, items: list[QualityItem], *, truncation_points: tuple[float, ...],
                    early_answer_tokens: int, max_tokens: int, judge_client=None,
                    progress: Progress | None = None) -> dict[str, dict]:
    """{problem_id: {"early_answering", "corrupted_step", "logprob", "coherence"}} for `items`."""
    mode = faith.continuation_mode(client.backend)
    out: dict[str, dict] = {item.problem.id: {} for item in items}
    bodies = {item.problem.id: reasoning_body(item.result.prediction) for item in items}

    # Faithfulness probes 1 and 2: every request of every problem in one batch.
    requests, keys = [], []
    for item in items:
        body = bodies[item.problem.id]
        for point, request in faith.early_answer_requests(item.messages, body, truncation_points, mode,
                                                          early_answer_tokens):
            requests.append(request)
            keys.append((item, "early", point, None))
        corruption = corrupt_step(body)
        if corruption is not None:
            requests.append(faith.corruption_request(item.messages, corruption, mode, max_tokens))
            keys.append((item, "corrupt", None, corruption))
    completions = generate_with_progress(client, requests, "faithfulness", progress)
    early: dict[str, dict[float, str | None]] = {}
    for (item, kind, point, corruption), completion in zip(keys, completions):
        pid = item.problem.id
        if isinstance(completion, BaseException):
            log.warning("faithfulness probe for %s failed: %s", pid, completion)
            out[pid].setdefault("errors", []).append(str(completion))
            continue
        if kind == "early":
            early.setdefault(pid, {})[point] = faith.early_answer(item.problem, completion.text, mode)
        else:
            out[pid]["corrupted_step"] = faith.corruption_outcome(item.problem, item.result.extracted, corruption,
                                                                  completion.text, mode)
    for item in items:
        answers = early.get(item.problem.id, {})
        if faith.REFERENCE_POINT in answers and len(answers) == len(truncation_points) + 1:
            out[item.problem.id]["early_answering"] = faith.early_answering_score(item.problem, answers, mode)

    if faith.has_sequence_logprob(client.backend):
        _white_box(client.backend, items, bodies, out, progress)
    _coherence(items, judge_client, out, progress)
    return out


def generate_with_progress(client, requests, phase: str, progress: Progress | None):
    """client.generate(requests), calling progress(phase, done, total) as each result arrives."""
    if not requests:
        return []
    done = [0]

    def on_result(index, result):
        done[0] += 1
        if progress:
            progress(phase, done[0], len(requests))

    return client.generate(requests, on_result)


def _white_box(backend, items: list[QualityItem], bodies: dict[str, str], out: dict[str, dict],
               progress: Progress | None) -> None:
    scored = [item for item in items if item.result.extracted is not None]
    pairs = []
    for item in scored:
        continuations = faith.LogprobPairs.build(bodies[item.problem.id], item.result.extracted).as_list()
        pairs.extend((item.messages, text) for text in continuations)
    if not pairs:
        return
    scores = faith.sequence_logprobs(backend, pairs)
    for k, item in enumerate(scored):
        out[item.problem.id]["logprob"] = faith.logprob_gain(scores[4 * k:4 * k + 4])
    if progress:
        progress("white-box log-probabilities", len(scored), len(scored))


def _coherence(items: list[QualityItem], judge_client, out: dict[str, dict], progress: Progress | None) -> None:
    from rdistill.steps import check_steps

    reports = {item.problem.id: check_steps(item.result.prediction) for item in items}
    checked = {pid: coh.checker_step_scores(report) for pid, report in reports.items()}
    judged: dict[str, dict[int, float]] = {}
    if judge_client is not None:
        asks = []
        for item in items:
            report = reports[item.problem.id]
            asked = [i for i in range(1, report.n_steps + 1) if i not in checked[item.problem.id]]
            if asked:
                asks.append((item, asked, coh.judge_request(item.problem.question, report.steps, asked)))
        completions = generate_with_progress(judge_client, [r for _, _, r in asks], "coherence judge", progress)
        for (item, asked, _), completion in zip(asks, completions):
            if isinstance(completion, BaseException):
                log.warning("coherence judge failed for %s: %s", item.problem.id, completion)
                continue
            judged[item.problem.id] = coh.parse_judge_scores(completion.text, asked)
            out[item.problem.id]["judge_reply"] = completion.text
    for item in items:
        pid = item.problem.id
        out[pid]["coherence"] = coh.coherence(reports[pid].n_steps, checked[pid], judged.get(pid, {}))


# ------------------------------------------------------------------------------------------------ averages

def quality_values(results: list[EvalResult]) -> dict[str, list[float]]:
    """Per-problem values of each metric, from the first sample of each problem."""
    values: dict[str, list[float]] = {name: [] for name in QUALITY_METRICS}
    for result in results:
        if result.sample_index != 0:
            continue
        steps = result.metadata.get("steps") or {}
        quality = result.metadata.get("quality") or {}
        if "n_steps" in steps:
            values["steps"].append(float(steps["n_steps"]))
        if steps.get("arithmetic_validity") is not None:
            values["arithmetic_validity"].append(float(steps["arithmetic_validity"]))
        if "early_answering" in quality:
            values["early_answering"].append(float(quality["early_answering"]["score"]))
        if "corrupted_step" in quality:
            values["corruption_followed"].append(float(quality["corrupted_step"]["followed"]))
        if "logprob" in quality:
            values["logprob_gain"].append(float(quality["logprob"]["gain"]))
        if (quality.get("coherence") or {}).get("score") is not None:
            values["coherence"].append(float(quality["coherence"]["score"]))
    return values


def aggregate_quality(results: list[EvalResult]) -> dict[str, dict]:
    """{metric: {"mean", "ci": [lo, hi], "n"}}; a metric nobody measured has mean None and n 0."""
    out = {}
    for name, vals in quality_values(results).items():
        if vals and name in PROPORTION_METRICS:
            share = proportion(vals)
            out[name] = {"mean": share["value"], "ci": share["ci"], "n": share["n"]}
        elif vals:
            lo, hi = bootstrap_interval(vals)
            out[name] = {"mean": sum(vals) / len(vals), "ci": [lo, hi], "n": len(vals)}
        else:
            out[name] = {"mean": None, "ci": None, "n": 0}
    return out
