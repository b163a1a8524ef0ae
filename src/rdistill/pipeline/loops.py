"""The steps the closed-loop methods (star.py, targeted.py) are made of: a model answers problems, traces are
filtered, a student is trained; each step is resumable (generation appends to its file, training resumes)."""

from __future__ import annotations

from pathlib import Path

from rdistill.jsonl import load_records
from rdistill.records import Problem, Trace


def generation_options(ctx, *, temperature: float | None = None, samples: int | None = 1):
    """The recipe's generation options, one sample per problem, no adaptive sampling or logprobs."""
    from dataclasses import replace

    from rdistill.pipeline.recipe import generation_options as recipe_options

    options = replace(recipe_options(ctx.recipe), samples=samples, adaptive=False, logprobs=0)
    return options if temperature is None else replace(options, temperature=temperature)


def answer_as_trained(ctx, spec: str, problems: list[Problem], out: Path, *, temperature: float) -> list[Trace]:
    """`spec` (a student) answers `problems` the way it is trained and evaluated (train.system_prompt)."""
    from rdistill.generate.strategies.as_trained import AsTrained
    from rdistill.generate.templates import load_templates

    options = generation_options(ctx, temperature=temperature)
    strategy = AsTrained(options, load_templates(options.templates), system_prompt=ctx.recipe.train.system_prompt)
    generate_with(ctx, spec, problems, strategy, options, out, backend_options=ctx.recipe.student.backend_options)
    return load_records(out, Trace)


def generate_with(ctx, spec: str, problems: list[Problem], strategy, options, out: Path, *,
                  backend_options: dict | None = None, budget_usd: float | None = None):
    """Traces of `problems` from model `spec` into `out` (appending: a rerun continues); returns the summary."""
    from rdistill.evaluate.runner import close_client
    from rdistill.generate import generate_traces
    from rdistill.pipeline.stages import StageIncomplete
    from rdistill.teachers import make_teacher

    ctx.clients.close_all()
    client = make_teacher(spec, cache=ctx.cache, budget_usd=budget_usd, backend_options=dict(backend_options or {})
                          or None)
    try:
        summary = generate_traces(problems, client, strategy, options, out, progress=ctx.observer.generation)
    finally:
        close_client(client)
    if summary.failures:
        raise StageIncomplete(f"{summary.failures} samples from {spec} failed ({summary.first_error}); run again to "
                              "retry them (what was written so far is kept)")
    return summary


def filter_into(ctx, source: Path, output: Path) -> list[Trace]:
    """The recipe's filter over `source`; its report and rejected traces beside `output`."""
    from rdistill.filter import filter_file
    from rdistill.pipeline.recipe import filter_config

    filter_file(source, output, filter_config(ctx.recipe), report_path=output.with_suffix(".report.json"),
                rejected_path=output.with_suffix(".rejected.jsonl"))
    return load_records(output, Trace)


def train_from_base(ctx, traces: Path, out: Path, *, method: str, settings_for: str | None = None,
                    options: dict | None = None) -> int:
    """Train a new student from the recipe's base student into `out` (resuming there); returns its steps. The
    settings are method entry `settings_for`'s, or the train-wide ones."""
    from rdistill.pipeline.recipe import star_train_settings, train_settings
    from rdistill.train import train_student

    ctx.clients.close_all()  # the memory goes to training
    resume = out.is_dir() and any(out.iterdir())
    student = ctx.recipe.student.model
    settings = (train_settings(ctx.recipe, settings_for, student=student, output_dir=out, resume=resume)
                if settings_for else star_train_settings(ctx.recipe, student=student, output_dir=out, resume=resume))
    return train_student(traces, settings, method=method, options=options, on_progress=ctx.observer.training).steps
