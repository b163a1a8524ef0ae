"""Targeted distillation (a Lion-style closed loop) as recipe stages: ask the teacher only where the student fails.

`targeted` (folder targeted/):
1. a pool of training-side problems (`targeted.pool`, none of them a training or evaluation question) is answered
   by a trained student (`targeted.student`, a method entry), asked as it is evaluated -> probe.jsonl;
2. the problems it fails go to the teacher, with the recipe's generation strategy -> new.jsonl, then the recipe's
   filter -> new_clean.jsonl;
3. a new student is trained from the base, with that entry's method and settings, on the entry's own traces plus
   the new ones -> student/.
`targeted:random` (folder targeted-random/, with `targeted.control: true`): the control at the same teacher budget,
as many pool problems as the student failed, drawn at random (seeded) from the whole pool, sent to the teacher and
trained on the same way. Evaluated as the models `targeted` and `targeted_random`.
"""

from __future__ import annotations

import json
import random

from rdistill.errors import RdistillError
from rdistill.jsonl import load_records, write_records
from rdistill.pipeline.loops import answer_as_trained, filter_into, generate_with, generation_options, train_from_base
from rdistill.records import Problem, Trace

STAGE, CONTROL = "targeted", "targeted:random"
PROBE, NEW, NEW_CLEAN, TRAIN, STUDENT, SUMMARY = ("probe.jsonl", "new.jsonl", "new_clean.jsonl", "train.jsonl",
                                                  "student", "summary.json")


def pool_problems(ctx) -> tuple[list[Problem], int]:
    """The pool, less any problem whose question is a training or evaluation question: (problems, dropped)."""
    from rdistill.data.synth._base import normalise_question
    from rdistill.pipeline.stages import TRAIN_FILE, load_source

    recipe = ctx.recipe
    pool = load_source(recipe.targeted.pool, default_split="train")
    taken = {normalise_question(p.question) for p in load_records(ctx.output("data", TRAIN_FILE), Problem)}
    for name in recipe.data.eval:
        taken |= {normalise_question(p.question)
                  for p in load_records(ctx.output("data", f"eval/{name}.jsonl"), Problem)}
    kept = [p for p in pool if normalise_question(p.question) not in taken]
    if not kept:
        raise RdistillError("targeted.pool: every pool problem is a training or evaluation question; draw the pool "
                            "with another seed or source")
    return kept, len(pool) - len(kept)


def run_targeted(ctx):
    from rdistill.pipeline.stages import StageResult

    recipe, config = ctx.recipe, ctx.recipe.targeted
    pool, overlapping = pool_problems(ctx)
    probed = recipe.student.trained_model.replace("{folder}", str(ctx.output(f"train:{config.student}")))
    answers = answer_as_trained(ctx, probed, pool, ctx.work / PROBE, temperature=0.0)
    solved = {t.problem_id for t in answers if t.correct}
    failed = [p for p in pool if p.id not in solved]
    extended, usage = _extend_and_train(ctx, failed)
    summary = {"student": config.student, "pool": len(pool), "pool_overlapping_dropped": overlapping,
               "solved": len(solved), "failed": len(failed), **extended}
    (ctx.work / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return StageResult({"student": STUDENT, "summary": SUMMARY, "probe": PROBE}, usage, summary)


def run_targeted_random(ctx):
    from rdistill.pipeline.stages import StageResult

    count = json.loads(ctx.output(STAGE, SUMMARY).read_text(encoding="utf-8"))["failed"]
    pool, _ = pool_problems(ctx)
    chosen = random.Random(ctx.recipe.targeted.seed).sample(pool, min(count, len(pool)))
    extended, usage = _extend_and_train(ctx, chosen)
    summary = {"student": ctx.recipe.targeted.student, "pool": len(pool), "drawn": len(chosen), **extended}
    (ctx.work / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return StageResult({"student": STUDENT, "summary": SUMMARY}, usage, summary)


def _extend_and_train(ctx, problems: list[Problem]) -> tuple[dict, dict | None]:
    """The teacher's traces for `problems`, filtered, added to the probed entry's own traces; a new student.
    Returns (what was done, the teacher's usage)."""
    from rdistill.generate.runner import prepare_strategy
    from rdistill.pipeline.stages import CLEAN_FILE

    recipe, config = ctx.recipe, ctx.recipe.targeted
    options = generation_options(ctx, samples=recipe.generate.samples)
    usage = None
    new: list[Trace] = []
    if problems:
        from rdistill.pipeline.manifest import usage_from_ledger

        summary = generate_with(ctx, recipe.teacher.model, problems, prepare_strategy(recipe.generate.strategy, options),
                                options, ctx.work / NEW, backend_options=recipe.teacher.backend_options,
                                budget_usd=recipe.teacher.budget_usd)
        usage = usage_from_ledger(summary.ledger)
        new = filter_into(ctx, ctx.work / NEW, ctx.work / NEW_CLEAN)
    original = load_records(ctx.output("filter", CLEAN_FILE), Trace)
    write_records(ctx.work / TRAIN, [*original, *new])
    entry = recipe.train.methods[config.student]
    steps = train_from_base(ctx, ctx.work / TRAIN, ctx.work / STUDENT, method=recipe.train.method_of(config.student),
                            settings_for=config.student, options=entry.options)
    return {"sent_to_teacher": len(problems), "new_traces_kept": len(new), "trained_on": len(original) + len(new),
            "train_steps": steps}, usage
