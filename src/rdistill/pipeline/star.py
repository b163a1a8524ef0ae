"""STaR, the self-taught reasoner (Zelikman et al. 2022), as stages of a recipe: `star:1`, `star:2`, ...

One iteration (one stage, folder star/I):
1. the current student (the untrained one in iteration 1, else iteration I-1's) answers every training problem,
   asked as it is trained and evaluated (the recipe's train.system_prompt) -> samples.jsonl;
2. the problems it got wrong are rationalized: a model (the same student, as in the paper, or `star.rationalizer`)
   is shown the gold answer and writes the reasoning to it (generate's `rationalize` strategy) -> rationales.jsonl;
   `star.rationalize: false` is the paper's ablation (no rationalization);
3. the correct answers and the rationales that reach the gold answer go through the recipe's filter (the arithmetic
   of every step re-computed, as for teacher traces) -> clean.jsonl;
4. a new student is trained *from the base model* on them (`star.method`, cot_sft by default, with the recipe's
   train settings) -> student/.
The stage records solved, rationalized, kept and the training accuracy (solved / problems). When an iteration's
training accuracy does not rise above the previous one's, the loop has converged: that iteration trains nothing
and its student is the previous one (`stopped`), and so are all later ones.

Every step is resumable as the pipeline's stages are: generation appends to its file, training resumes from its
last checkpoint. Imports reach down into generate, filter and train only; train/ never imports this.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from rdistill.errors import RdistillError
from rdistill.jsonl import load_records, write_records
from rdistill.pipeline.loops import answer_as_trained, filter_into, generate_with, generation_options, train_from_base
from rdistill.records import Problem, Trace

log = logging.getLogger(__name__)

SAMPLES, RATIONALES, UNION, CLEAN, STUDENT, SUMMARY = ("samples.jsonl", "rationales.jsonl", "union.jsonl",
                                                       "clean.jsonl", "student", "summary.json")


def star_stage_name(iteration: int) -> str:
    return f"star:{iteration}"


def run_star(ctx, iteration: int):
    """One STaR iteration in ctx.work; returns the stage's StageResult."""
    from rdistill.pipeline.stages import TRAIN_FILE, StageResult

    recipe, star = ctx.recipe, ctx.recipe.star
    problems = load_records(ctx.output("data", TRAIN_FILE), Problem)
    previous = _previous_summaries(ctx, iteration)
    if previous and (previous[-1].get("stopped") or _flat(previous)):
        return _stopped(ctx, iteration, previous, problems)

    sampler = _student_spec(ctx, iteration)
    samples = _answer(ctx, sampler, problems)
    solved = [t for t in samples if t.correct]
    solved_ids = {t.problem_id for t in solved}
    wrong = [p for p in problems if p.id not in solved_ids]
    rationales: list[Trace] = []
    if star.rationalize and wrong:
        rationales = _rationalize(ctx, star.rationalizer or sampler, wrong)
    reached = [t for t in rationales if t.correct]
    if not solved and not reached:
        raise RdistillError(f"STaR iteration {iteration}: the student solved none of the {len(problems)} training "
                            f"problems and {'no rationale reached the gold answer' if star.rationalize else 'rationalization is off'}"
                            "; nothing to train the next student on (a stronger starting student, or "
                            "star.rationalizer: a teacher model)")
    write_records(ctx.work / UNION, [*solved, *reached])
    kept = _filter(ctx)
    if not kept:
        raise RdistillError(f"STaR iteration {iteration}: none of the {len(solved)} correct answers and "
                            f"{len(reached)} rationales passed the filter; nothing to train the next student on")
    steps = _train(ctx, kept_file=ctx.work / CLEAN)
    summary = {"iteration": iteration, "sampler": sampler, "problems": len(problems), "solved": len(solved),
               "train_accuracy": len(solved) / len(problems) if problems else None, "wrong": len(wrong),
               "rationalized": len(rationales), "rationales_correct": len(reached),
               "kept": len(kept), "kept_solved": sum(1 for t in kept if not t.hinted),
               "kept_rationalized": sum(1 for t in kept if t.hinted), "train_steps": steps, "stopped": False}
    (ctx.work / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return StageResult({"student": STUDENT, "samples": SAMPLES, "clean": CLEAN, "summary": SUMMARY},
                       detail=summary)


def _previous_summaries(ctx, iteration: int) -> list[dict[str, Any]]:
    return [json.loads(ctx.output(star_stage_name(i), SUMMARY).read_text(encoding="utf-8"))
            for i in range(1, iteration)]


def _flat(previous: list[dict[str, Any]]) -> bool:
    """The last finished iteration's training accuracy did not rise above the one before it."""
    trained = [s for s in previous if not s.get("stopped")]
    return len(trained) >= 2 and trained[-1]["train_accuracy"] <= trained[-2]["train_accuracy"]


def _stopped(ctx, iteration: int, previous: list[dict[str, Any]], problems: list[Problem]):
    from rdistill.pipeline.stages import StageResult

    last = next(i for i in range(iteration - 1, 0, -1) if not previous[i - 1].get("stopped"))
    shutil.copytree(ctx.output(star_stage_name(last), STUDENT), ctx.work / STUDENT, dirs_exist_ok=True)
    summary = {"iteration": iteration, "problems": len(problems), "stopped": True, "student_of_iteration": last,
               "reason": "the training accuracy stopped rising"}
    (ctx.work / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log.info("STaR iteration %d: converged, keeping iteration %d's student", iteration, last)
    return StageResult({"student": STUDENT, "summary": SUMMARY}, detail=summary)


def _student_spec(ctx, iteration: int) -> str:
    recipe = ctx.recipe
    if iteration == 1:
        return recipe.student.baseline_model or recipe.student.model
    folder = ctx.output(star_stage_name(iteration - 1), STUDENT)
    return recipe.student.trained_model.replace("{folder}", str(folder))


def _answer(ctx, spec: str, problems: list[Problem]) -> list[Trace]:
    return answer_as_trained(ctx, spec, problems, ctx.work / SAMPLES, temperature=ctx.recipe.star.temperature)


def _rationalize(ctx, spec: str, problems: list[Problem]) -> list[Trace]:
    from rdistill.generate.runner import prepare_strategy

    options = generation_options(ctx, temperature=0.0)
    generate_with(ctx, spec, problems, prepare_strategy("rationalize", options), options, ctx.work / RATIONALES,
                  backend_options=ctx.recipe.student.backend_options)
    return load_records(ctx.work / RATIONALES, Trace)


def _filter(ctx) -> list[Trace]:
    return filter_into(ctx, ctx.work / UNION, ctx.work / CLEAN)


def _train(ctx, kept_file: Path) -> int:
    return train_from_base(ctx, kept_file, ctx.work / STUDENT, method=ctx.recipe.star.method)
