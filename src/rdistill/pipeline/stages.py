"""One small function per stage type. Each reads the outputs of earlier stages, writes its own into `ctx.work` (a
folder the runner renames into place only when the function returns) and returns what it wrote.

Every stage goes through the same Python API as the matching CLI command:

    data      rdistill.data.synth.generate / rdistill.data.benchmarks.load_benchmark  (rdistill data synth|load)
    generate  rdistill.generate.generate_traces                                       (rdistill generate)
    filter    rdistill.filter.filter_file                                             (rdistill filter)
    train     rdistill.train.train_student, or `accelerate launch -m rdistill train`  (rdistill train)
    eval      rdistill.evaluate.runner.evaluate                                       (rdistill eval)
    report    rdistill.report.build_report                                            (rdistill report)

Resuming: when `ctx.resume` is set, `ctx.work` holds what an interrupted attempt at the same work left. Generation
appends to its trace file and skips what is there; training continues from its last checkpoint (resume=True).
The other stages are short and simply run again (evaluation answers come back from the response cache).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rdistill.child_process import run_tied
from rdistill.errors import InputError, RdistillError
from rdistill.jsonl import atomic_writer, load_records, write_records
from rdistill.pipeline.manifest import usage_from_ledger
from rdistill.pipeline.recipe import (ProblemSource, Recipe, eval_options, filter_config, generation_options,
                                      train_settings)
from rdistill.records import Problem

if TYPE_CHECKING:
    from rdistill.pipeline.runner import RunObserver

log = logging.getLogger(__name__)

TRAIN_FILE = "train.jsonl"
VALIDATION_FILE = "validation.jsonl"
CHOICE_FILE = "choice.json"
TRACES_FILE = "traces.jsonl"
CLEAN_FILE = "clean.jsonl"
LAUNCH_LOG = "launch.log"


class StageIncomplete(RdistillError):
    """The stage stopped short (budget reached, failed samples); its partial work is kept for the next run.
    `exit_code` follows `rdistill generate`: 3 when the budget was reached, 1 when samples failed."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class StageResult:
    outputs: dict[str, str]  # name -> path relative to the stage folder ("." for the folder itself)
    usage: dict[str, Any] | None = None  # calls, cache_hits, prompt_tokens, completion_tokens, cost_usd
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageContext:
    recipe: Recipe
    run_dir: Path  # as the user gave it (model strings of trained students are built from it)
    work: Path  # the folder this stage writes into
    resume: bool  # `work` holds an interrupted attempt at the same work
    observer: "RunObserver"
    clients: "ClientPool"
    final_dirs: dict[str, Path]  # stage name -> its folder once done (absolute)
    cache: bool | str = True

    def output(self, stage: str, relpath: str = ".") -> Path:
        return self.final_dirs[stage] / relpath


# -- data ----------------------------------------------------------------------------------------------------------

def load_source(source: ProblemSource, *, default_split: str) -> list[Problem]:
    """The problems a recipe source names (what `rdistill data synth` / `data load` would write)."""
    if source.kind == "synth":
        from rdistill.data.synth import generate, parse_steps_range

        try:
            steps = parse_steps_range(source.steps or "1-4", task=source.synth)
            return generate(source.synth, source.n, seed=source.seed, split=source.split or default_split,
                            steps=steps, **source.options)
        except ValueError as e:
            raise InputError(str(e), field="synth") from None
    if source.kind == "bench":
        from rdistill.data.benchmarks import load_benchmark

        from rdistill.data import is_bundled

        problems = load_benchmark(source.bench, split=source.split or default_split, path=source.path,
                                  limit=source.limit)
        if source.limit and len(problems) < source.limit and is_bundled(source.path):
            raise InputError(f"the bundled copy of {source.bench} holds {len(problems)} problems of this split, fewer "
                             f"than limit {source.limit}: point path at a full copy, or remove path to read the hub",
                             path=source.path, field="limit")
        return problems
    problems = load_records(source.file, Problem)
    return problems[:source.limit] if source.limit else problems


def describe_source(source: ProblemSource) -> str:
    if source.kind == "synth":
        return f"synth:{source.synth} n={source.n} steps={source.steps or '1-4'} seed={source.seed}"
    if source.kind == "bench":
        from rdistill.data import is_bundled

        where = "bundled" if is_bundled(source.path) else source.path or "hub"
        return f"{source.bench} ({where})" + (f" first {source.limit}" if source.limit else "")
    return str(source.file)


def run_data(ctx: StageContext) -> StageResult:
    from rdistill.data.synth._base import normalise_question

    data = ctx.recipe.data
    train: list[Problem] = []
    seen_ids: set[str] = set()
    seen_questions: set[str] = set()
    duplicates = 0
    if ctx.recipe.reuse is not None:  # the reused run's training problems: evaluation must not ask one of them
        for problem in load_records(Path(ctx.recipe.reuse.run) / "data" / TRAIN_FILE, Problem):
            seen_ids.add(problem.id)
            seen_questions.add(normalise_question(problem.question))
            train.append(problem)
    for i, source in enumerate(data.train):
        for problem in load_source(source, default_split="train"):
            question = normalise_question(problem.question)
            if problem.id in seen_ids or (data.dedup and question in seen_questions):
                if not data.dedup:
                    raise InputError(f"problem id {problem.id!r} appears twice in the training data; set "
                                     "data.dedup: true to keep the first", field=f"data.train.{i}")
                duplicates += 1
                continue
            seen_ids.add(problem.id)
            seen_questions.add(question)
            train.append(problem)
    if not train:
        raise InputError("the training data is empty", field="data.train")

    eval_sets: dict[str, list[Problem]] = {}
    for name, source in data.eval.items():
        problems = load_source(source, default_split="test")
        if not problems:
            raise InputError(f"evaluation set {name!r} is empty", field=f"data.eval.{name}")
        ids = [p.id for p in problems]
        if len(set(ids)) != len(ids):
            raise InputError(f"evaluation set {name!r} repeats problem ids", field=f"data.eval.{name}")
        overlap = [p for p in problems if normalise_question(p.question) in seen_questions]
        if overlap:
            raise InputError(f"{len(overlap)} of the {len(problems)} problems of evaluation set {name!r} are also in "
                             f"the training data (e.g. {overlap[0].id}: {overlap[0].question[:80]!r}); an evaluation "
                             "must be on unseen questions", field=f"data.eval.{name}")
        eval_sets[name] = problems
    validation = _validation_problems(data.validation, seen_questions, eval_sets) if data.validation else None

    write_records(ctx.work / TRAIN_FILE, train)
    outputs = {"train": TRAIN_FILE}
    for name, problems in eval_sets.items():
        write_records(ctx.work / "eval" / f"{name}.jsonl", problems)
        outputs[f"eval.{name}"] = f"eval/{name}.jsonl"
    if validation is not None:
        write_records(ctx.work / VALIDATION_FILE, validation)
        outputs["validation"] = VALIDATION_FILE
    detail = {"train": len(train), "duplicates_dropped": duplicates,
              "train_steps": _step_counts(train),
              "sources": [describe_source(s) for s in data.train],
              "eval": {name: {"problems": len(p), "source": describe_source(data.eval[name]),
                              "steps": _step_counts(p)} for name, p in eval_sets.items()}}
    if validation is not None:
        detail["validation"] = {"problems": len(validation), "source": describe_source(data.validation),
                                "steps": _step_counts(validation)}
    _write_json(ctx.work / "summary.json", detail)
    outputs["summary"] = "summary.json"
    log.info("data: %d training problems (%d duplicates dropped), eval sets %s", len(train), duplicates,
             {k: len(v) for k, v in eval_sets.items()})
    return StageResult(outputs, detail=detail)


def _validation_problems(source: ProblemSource, train_questions: set[str],
                         eval_sets: dict[str, list[Problem]]) -> list[Problem]:
    """The validation slice: problems in neither the training data nor any evaluation set (a choice made on them
    must not have seen either)."""
    from rdistill.data.synth._base import normalise_question

    problems = load_source(source, default_split="validation")
    if not problems:
        raise InputError("the validation set is empty", field="data.validation")
    evaluated = {normalise_question(p.question): name for name, ps in eval_sets.items() for p in ps}
    for p in problems:
        question = normalise_question(p.question)
        where = "the training data" if question in train_questions else evaluated.get(question)
        if where:
            raise InputError(f"validation problem {p.id} ({p.question[:80]!r}) is also in "
                             f"{where if where == 'the training data' else f'evaluation set {where!r}'}: a choice "
                             "made on it would not be made on unseen problems", field="data.validation")
    return problems


def _step_counts(problems: list[Problem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in problems:
        if p.difficulty is not None:
            counts[str(p.difficulty)] = counts.get(str(p.difficulty), 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: int(kv[0])))


# -- generate ------------------------------------------------------------------------------------------------------

def run_generate(ctx: StageContext) -> StageResult:
    from rdistill.evaluate.runner import close_client
    from rdistill.generate import generate_traces
    from rdistill.generate.runner import prepare_strategy
    from rdistill.teachers import make_teacher

    recipe = ctx.recipe
    options = generation_options(recipe)
    prepared = prepare_strategy(recipe.generate.strategy, options)
    problems = load_records(ctx.output("data", TRAIN_FILE), Problem)
    if recipe.generate.limit:
        problems = problems[:recipe.generate.limit]
    traces = ctx.work / TRACES_FILE
    if ctx.resume and traces.exists():
        log.info("generate: continuing %s", traces)
    client = make_teacher(recipe.teacher.model, cache=ctx.cache, budget_usd=recipe.teacher.budget_usd,
                          concurrency=recipe.teacher.concurrency, prices=recipe.teacher.prices,
                          backend_options=dict(recipe.teacher.backend_options) or None)
    try:
        summary = generate_traces(problems, client, prepared, options, traces, progress=ctx.observer.generation)
        client.ledger.save(ctx.work / "ledger.json")
    finally:
        close_client(client)
    detail = summary.to_dict()
    _write_json(ctx.work / "summary.json", detail)
    if summary.budget_exceeded:
        raise StageIncomplete(f"generation stopped on the budget ({summary.budget_exceeded}); the "
                              f"{summary.traces_written} traces answered so far are kept: raise teacher.budget_usd "
                              "and run again to continue", exit_code=3)
    if summary.failures:
        raise StageIncomplete(f"{summary.failures} generation samples failed ({summary.first_error}); run again to "
                              "retry them (the traces written so far are kept)")
    usage = usage_from_ledger(summary.ledger)
    return StageResult({"traces": TRACES_FILE, "ledger": "ledger.json", "summary": "summary.json"}, usage,
                       {k: detail[k] for k in ("problems", "already_done", "problems_done", "traces_written",
                                               "correct_written", "reused", "calls", "cache_hits", "cost_usd")})


# -- filter --------------------------------------------------------------------------------------------------------

def run_filter(ctx: StageContext) -> StageResult:
    from rdistill.filter import filter_file

    clean = ctx.work / CLEAN_FILE
    report = filter_file(ctx.output("generate", TRACES_FILE), clean, filter_config(ctx.recipe),
                         report_path=ctx.work / "report.json", rejected_path=ctx.work / "rejected.jsonl")
    if report.kept == 0 and ctx.recipe.train.methods:
        raise RdistillError(f"the filter kept none of the {report.input} traces, so there is nothing to train on; "
                            f"see {ctx.work / 'report.json'} for why, and loosen the filter settings")
    return StageResult({"clean": CLEAN_FILE, "rejected": "rejected.jsonl", "report": "report.json"},
                       detail={"input": report.input, "kept": report.kept, "dropped": report.dropped,
                               "dropped_by_reason": report.dropped_by_reason})


# -- train ---------------------------------------------------------------------------------------------------------

def run_train(ctx: StageContext, name: str) -> StageResult:
    from rdistill.train import train_student

    recipe = ctx.recipe
    ctx.clients.close_all()  # the memory goes to training
    resume = ctx.resume and any(ctx.work.iterdir())
    settings = train_settings(recipe, name, student=recipe.student.model, output_dir=ctx.work, resume=resume)
    method = recipe.train.method_of(name)
    options = recipe.train.methods[name].options
    traces = ctx.output("filter", CLEAN_FILE)
    if recipe.train.accelerate is not None:
        launch_training(ctx, traces, settings, method, options)
        run = json.loads((ctx.work / "rdistill_train.json").read_text(encoding="utf-8"))
        metrics = run.get("metrics", {})
        detail = {"method": method, "steps": metrics.get("steps"), "final_loss": metrics.get("final_loss"),
                  "tokens_per_s": metrics.get("tokens_per_s"), "resumed": resume,
                  "processes": recipe.train.accelerate.num_processes}
    else:
        result = train_student(traces, settings, method=method, options=options, on_progress=ctx.observer.training)
        run = result.run
        detail = {"method": method, "steps": result.steps, "final_loss": result.final_loss,
                  "tokens_per_s": result.tokens_per_s, "resumed": resume}
    detail["precision"] = run.get("precision")  # which dtype training computed in, and why
    return StageResult({"student": "."}, detail=detail)


def train_command(traces: Path, settings, method: str, options: dict[str, Any]) -> list[str]:
    """The `rdistill train` arguments that give `settings` (what `accelerate launch -m rdistill` runs)."""
    s = settings
    args = ["train", str(traces), "--student", s.student, "--method", method, "-o", str(s.output_dir),
            "--lora" if s.lora else "--full", "--epochs", str(s.epochs), "--batch-size", str(s.batch_size),
            "--grad-accum", str(s.grad_accum), "--max-length", str(s.max_length),
            "--packing" if s.packing else "--no-packing", "--seed", str(s.seed), "--save-steps", str(s.save_steps),
            "--logging-steps", str(s.logging_steps), "--lora-r", str(s.lora_r), "--lora-alpha", str(s.lora_alpha),
            "--lora-dropout", str(s.lora_dropout), "--warmup-ratio", str(s.warmup_ratio),
            "--weight-decay", str(s.weight_decay), "--lr-scheduler", s.lr_scheduler]
    if s.learning_rate is not None:
        args += ["--lr", str(s.learning_rate)]
    if s.max_steps is not None:
        args += ["--max-steps", str(s.max_steps)]
    if s.save_total_limit is not None:
        args += ["--save-total-limit", str(s.save_total_limit)]
    if s.system_prompt is not None:
        args += ["--system-prompt", s.system_prompt]
    if s.bf16 is not None:
        args.append("--bf16" if s.bf16 else "--no-bf16")
    if s.gradient_checkpointing:
        args.append("--gradient-checkpointing")
    if s.save_merged:
        args.append("--save-merged")
    if s.resume:
        args.append("--resume")
    for reporter in s.report_to:
        args += ["--report-to", reporter]
    for key, value in options.items():
        text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        args += ["-O", f"{key}={text}"]
    return args


def launch_command(launch, train_args: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(launch.num_processes),
           "--num_machines", "1", "--dynamo_backend", "no"]
    if launch.multi_gpu and launch.num_processes > 1:
        cmd.append("--multi_gpu")
    if launch.mixed_precision:
        cmd += ["--mixed_precision", launch.mixed_precision]
    return [*cmd, *launch.args, "-m", "rdistill", *train_args]


def launch_training(ctx: StageContext, traces: Path, settings, method: str, options: dict[str, Any]) -> None:
    launch = ctx.recipe.train.accelerate
    cmd = launch_command(launch, train_command(traces, settings, method, options))
    log_path = ctx.work / LAUNCH_LOG  # kept in the student's folder
    ctx.observer.note(f"accelerate launch with {launch.num_processes} processes; log: {log_path}")
    log.info("launching: %s", " ".join(cmd))
    with log_path.open("a", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        # Tied: a launcher (and so its training processes) must not outlive a killed run, or it would go on
        # writing into the stage's folder while the resumed run trains there too.
        returncode = run_tied(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        raise RdistillError(f"accelerate launch exited with code {returncode}; see {log_path}: "
                            + " | ".join(tail))


# -- eval ----------------------------------------------------------------------------------------------------------

ROLE_STYLES = {"teacher": ("teacher", ["teacher"]), "baseline": ("baseline", ["plain", "teacher"])}


def eval_styles(recipe: Recipe, model: str) -> tuple[str, list[str]]:
    """The role of `model` and the prompts it is evaluated with: a student as it was taught ("trained"), and through
    each of its method entry's `eval_tasks` ("trained:rationale")."""
    if model in ROLE_STYLES:
        return ROLE_STYLES[model]
    entry = recipe.train.methods.get(model)
    return "student", ["trained"] + [f"trained:{task}" for task in (entry.eval_tasks if entry else [])]


def eval_model_string(recipe: Recipe, model: str, run_dir: Path) -> str:
    """The model string evaluated for `model` (teacher, baseline or a method entry's name)."""
    if model == "teacher":
        return recipe.teacher.eval_model or recipe.teacher.model
    if model == "baseline":
        return recipe.student.baseline_model or recipe.student.model
    if model in recipe.reused_students():
        return recipe.student.trained_model.replace("{folder}", str(Path(recipe.reuse.run) / "train" / model))
    if model == "star":  # the last iteration's student (the one it converged on, when it stopped early)
        return recipe.student.trained_model.replace("{folder}", str(run_dir / "star" / str(recipe.star.iterations)
                                                                    / "student"))
    if model in ("targeted", "targeted_random"):
        folder = "targeted" if model == "targeted" else "targeted-random"
        return recipe.student.trained_model.replace("{folder}", str(run_dir / folder / "student"))
    return recipe.student.trained_model.replace("{folder}", str(run_dir / "train" / model))


def eval_backend_options(recipe: Recipe, model: str) -> dict[str, Any]:
    """The teacher is served with the teacher's backend options; the untrained and trained students with the
    student's."""
    return dict(recipe.teacher.backend_options if model == "teacher" else recipe.student.backend_options)


SELECT_BASELINE = "select:baseline"


def selects_baseline_prompt(recipe: Recipe) -> bool:
    """Whether the baseline's prompt is chosen on the validation slice (then it is evaluated with that one only)."""
    return recipe.data.validation is not None and "baseline" in recipe.eval_models()


def run_select_baseline(ctx: StageContext) -> StageResult:
    """Evaluate the untrained student with each of its prompts on the validation slice and keep the better one (ties:
    plain, the simpler); the evaluation sets are then answered with that prompt only, chosen without seeing them."""
    problems = load_records(ctx.output("data", VALIDATION_FILE), Problem)
    evaluated = _evaluate_styles(ctx, "baseline", "validation", problems, faithfulness_n=0)
    runs = evaluated[0]
    candidates = {style: run.summary["accuracy"]["accuracy"]["value"] for style, run in runs.items()}
    best = max(candidates, key=lambda style: (candidates[style] or 0.0, style == "plain"))
    choice = {"prompt": best, "on": f"validation ({describe_source(ctx.recipe.data.validation)})",
              "n": len(problems), "candidates": candidates,
              "accuracy": {style: run.summary["accuracy"]["accuracy"] for style, run in runs.items()}}
    _write_json(ctx.work / CHOICE_FILE, choice)
    log.info("baseline prompt: %s, chosen on %d validation problems (%s)", best, len(problems), candidates)
    result = _eval_result(ctx, evaluated, {"model": eval_model_string(ctx.recipe, "baseline", ctx.run_dir),
                                      "role": "baseline", "set": "validation", "problems": len(problems)})
    result.outputs["choice"] = CHOICE_FILE
    result.detail["chosen"] = best
    return result


def run_eval(ctx: StageContext, model: str, set_name: str) -> StageResult:
    recipe = ctx.recipe
    problems = load_records(ctx.output("data", f"eval/{set_name}.jsonl"), Problem)
    choice = None
    if model == "baseline" and SELECT_BASELINE in ctx.final_dirs:
        choice = json.loads(ctx.output(SELECT_BASELINE, CHOICE_FILE).read_text(encoding="utf-8"))
    # The first of this model's eval stages in this run queues the questions of its sets not yet done at once
    # (answer_ahead): the slots stay full across sets, and each stage then reads its answers from the response cache.
    ahead = {name: ctx.output("data", f"eval/{name}.jsonl") for name in recipe.eval_sets()
             if name != set_name and f"eval:{model}:{name}" not in ctx.final_dirs}  # read only if queued
    evaluated = _evaluate_styles(ctx, model, set_name, problems, choice=choice, ahead=ahead)
    role, _ = eval_styles(recipe, model)
    return _eval_result(ctx, evaluated, {"model": eval_model_string(recipe, model, ctx.run_dir), "role": role,
                                    "set": set_name, "problems": len(problems)})


def _evaluate_styles(ctx: StageContext, model: str, set_name: str, problems: list[Problem], *,
                     choice: dict | None = None, faithfulness_n: int | None = None,
                     ahead: dict[str, Path] | None = None) -> tuple[dict[str, Any], dict | None]:
    """({style: EvalRun}, what answer_ahead did or None): `model` on `problems` through each of its prompts (only
    the chosen one when `choice`). Every prompt's questions, and those of the sets in `ahead` the first time this
    client is asked, go to the model in one queue first (answer_ahead); `evaluate` then finds them in the cache."""
    import dataclasses

    from rdistill.evaluate.runner import answer_ahead, evaluate

    recipe = ctx.recipe
    role, styles = eval_styles(recipe, model)
    if choice is not None:
        styles = [choice["prompt"]]
        choice = {k: choice[k] for k in ("on", "n", "candidates")}
    spec = eval_model_string(recipe, model, ctx.run_dir)
    client = ctx.clients.get(spec, batch_size=recipe.eval.batch_size, concurrency=recipe.eval.concurrency,
                             backend_options=eval_backend_options(recipe, model))
    options = {}
    for style in styles:
        prompt_style, _, task = style.partition(":")
        options[style] = eval_options(recipe, role, prompt_style, student_task=task or None, prompt_choice=choice)
        if faithfulness_n is not None:
            options[style] = dataclasses.replace(options[style], faithfulness_n=faithfulness_n)
    jobs = [(problems, o) for o in options.values()]
    if ahead and ctx.clients.first_look(client):
        others = [load_records(path, Problem) for path in ahead.values()]
        jobs += [(other, o) for other in others for o in options.values()]
    ahead_done = None
    if len(jobs) > 1 and client.cache is not None:
        ahead_done = answer_ahead(client, spec, jobs, progress=ctx.observer.evaluation)
    runs = {style: evaluate(spec, problems, bench=set_name, options=o, client=client, progress=ctx.observer.evaluation)
            for style, o in options.items()}
    return runs, ahead_done


def _eval_result(ctx: StageContext, evaluated: tuple[dict[str, Any], dict | None],
                 detail: dict[str, Any]) -> StageResult:
    """Write each style's results and summary into the stage folder; usage and accuracy per style."""
    runs, ahead = evaluated
    if ahead:  # this stage queued other sets' (or prompts') questions too: their time is in this stage's seconds
        detail["answered_ahead"] = ahead
    outputs: dict[str, str] = {}
    usage = {"calls": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    for style, run in runs.items():
        stem = style.replace(":", ".")  # trained.rationale.jsonl
        run.write(ctx.work / f"{stem}.jsonl")
        outputs[style] = f"{stem}.jsonl"
        outputs[f"{style}.summary"] = f"{stem}.summary.json"
        t = run.summary["throughput"]
        usage["calls"] += sum(1 for r in run.results if not r.usage.cached)
        usage["cache_hits"] += t["cached"]
        usage["prompt_tokens"] += t["prompt_tokens"]
        usage["completion_tokens"] += t["completion_tokens"]
        usage["cost_usd"] = round(usage["cost_usd"] + t["cost_usd"], 6)
        detail[style] = run.summary["accuracy"]["accuracy"]
    return StageResult(outputs, usage, detail)


class ClientPool:
    """Open evaluation clients, one model at a time: consecutive eval stages of one model load it once."""

    def __init__(self, cache: bool | str = True):
        self.cache = cache
        self.clients: dict[str, Any] = {}
        self.looked: set[int] = set()  # clients an eval stage has used already (answer_ahead runs on the first)

    def first_look(self, client) -> bool:
        """True the first time it is asked about `client`."""
        first = id(client) not in self.looked
        self.looked.add(id(client))
        return first

    def get(self, spec: str, *, batch_size: int, concurrency: int | None, backend_options: dict | None = None):
        from rdistill.evaluate.runner import open_model

        key = json.dumps([spec, batch_size, concurrency, backend_options or {}], sort_keys=True, default=str)
        if key not in self.clients:
            self.close_all()
            if backend_options:  # open_model's client, with the recipe's backend options on top
                from rdistill.teachers import make_teacher
                from rdistill.teachers.registry import parse_spec

                options = ({"batch_size": batch_size} if parse_spec(spec)[0] == "hf" else {}) | backend_options
                client = make_teacher(spec, cache=self.cache, concurrency=concurrency, backend_options=options)
            else:
                client = open_model(spec, cache=self.cache, batch_size=batch_size, concurrency=concurrency)
            self.clients[key] = client
        return self.clients[key]

    def close_all(self) -> None:
        from rdistill.evaluate.runner import close_client

        while self.clients:
            _, client = self.clients.popitem()
            self.looked.discard(id(client))
            close_client(client)


# -- report --------------------------------------------------------------------------------------------------------

def run_report(ctx: StageContext, eval_stages: list[str]) -> StageResult:
    from rdistill.report import build_report

    ctx.clients.close_all()
    results = []
    for stage in eval_stages:
        folder = ctx.final_dirs[stage]
        results.extend(sorted(p for p in folder.glob("*.jsonl")))
    ledgers = [p for p in [ctx.output("generate", "ledger.json")] if p.is_file()] if "generate" in ctx.final_dirs \
        else []
    r = ctx.recipe.report
    from rdistill.pipeline.manifest import MANIFEST_FILE

    manifest = json.loads((ctx.run_dir / MANIFEST_FILE).read_text(encoding="utf-8"))  # the stages' seconds
    files = build_report(results, ctx.work, ledgers=ledgers, hourly_usd=r.hourly_usd, prices=r.prices,
                         manifest=manifest, compare_with=r.compare_with, order=ctx.recipe.eval_sets(),
                         allow_mismatch=r.allow_mismatch, names=display_names(ctx.recipe, ctx.run_dir))
    recipe = ctx.recipe
    names = {eval_model_string(recipe, m, ctx.run_dir): m for m in recipe.eval_models()}
    headline = headline_rows(json.loads(files.json.read_text(encoding="utf-8")), names=names,
                             order=recipe.eval_sets())
    _write_json(ctx.work / "headline.json", headline)
    return StageResult({"html": "report.html", "markdown": "report.md", "json": "report.json",
                        "headline": "headline.json"}, detail={"results": len(results)})


def display_names(recipe: Recipe, run_dir: Path) -> dict[str, str]:
    """{model string: what the report calls it}: "teacher, Qwen2.5-Coder-1.5B-Instruct", "untrained student, ...",
    "cot_sft student, Qwen2.5-Coder-0.5B-Instruct + LoRA" (not the run folder's path; the report lists those)."""
    names: dict[str, list[str]] = {}
    for model in recipe.eval_models():
        spec = eval_model_string(recipe, model, run_dir)
        if model == "teacher":
            name = f"teacher, {model_title(spec)}"
        elif model == "baseline":
            name = f"untrained student, {model_title(spec)}"
        else:
            lora = _student_is_lora(recipe, model)
            name = f"{model} student, {model_title(recipe.student.model)}" + (" + LoRA" if lora else "")
        names.setdefault(spec, []).append(name)
    # One model in two roles (a teacher that is also the untrained student) keeps its model string: its rows differ
    # by role and prompt, and one name would be wrong for one of them.
    return {spec: found[0] for spec, found in names.items() if len(found) == 1}


def _student_is_lora(recipe: Recipe, model: str) -> bool:
    if model in recipe.reused_students():
        record = Path(recipe.reuse.run) / "train" / model / "rdistill_train.json"
        return bool(json.loads(record.read_text(encoding="utf-8"))["hyperparameters"].get("lora", True))
    if model == "star":
        return recipe.train.lora
    entry = recipe.targeted.student if model.startswith("targeted") else model
    return recipe.train.settings_for(entry).get("lora", True)


def model_title(spec: str) -> str:
    """A model's name as people write it: the hub name of a catalog model, else the last part of its string."""
    from rdistill.models.catalog import CATALOG

    rest = spec
    for prefix in ("llamaserver:", "llamacpp:", "hf:", "openai:", "anthropic:"):
        rest = rest.removeprefix(prefix)
    if rest.startswith("offline:") and rest.removeprefix("offline:") in CATALOG:
        return CATALOG[rest.removeprefix("offline:")].hf_repo.rsplit("/", 1)[-1]
    return rest.split("@", 1)[0].rstrip("/").rsplit("/", 1)[-1].removesuffix(".gguf")


def headline_rows(report: dict, *, names: dict[str, str] | None = None, order: list[str] | None = None) -> dict:
    """The headline table: per evaluated model (and prompt), its role and accuracy on every evaluation set.
    `names` maps a model string to the recipe's name for it (teacher, baseline, a method entry)."""
    benches = {b["bench"]: b for b in report.get("benches", [])}
    sets = [s for s in (order or []) if s in benches] + sorted(set(benches) - set(order or []))
    rows: dict[str, dict[str, Any]] = {}
    for bench in sets:
        for row in benches[bench]["rows"]:
            name = (names or {}).get(row["model"], row["model"])
            # a baseline has two prompts, a student asked through another of its tasks is another row
            other_prompt = row["role"] == "baseline" or row["prompt_style"].startswith("trained:")
            label = f"{name} [{row['prompt_style']}]" if other_prompt else name
            entry = rows.setdefault(row["label"], {"name": label, "label": row["label"], "model": row["model"],
                                                   "role": row["role"], "prompt_style": row["prompt_style"],
                                                   "baseline_used_on": [], "accuracy": {}})
            if row.get("baseline_used"):  # the better of the baseline's prompts, per set
                entry["baseline_used_on"].append(bench)
            entry["accuracy"][bench] = row["accuracy"]
            if row.get("paired"):  # a student against the teacher and the baseline used, on the same problems
                entry.setdefault("paired", {})[bench] = row["paired"]
    # Name what each student was compared with the way the table names it (new dicts: the report is not changed).
    named = {label: entry["name"] for label, entry in rows.items()}
    for entry in rows.values():
        if "paired" in entry:
            entry["paired"] = {bench: [{**c, "against": named.get(c["against"], c["against"])} for c in comparisons]
                               for bench, comparisons in entry["paired"].items()}
    return {"sets": sets, "rows": list(rows.values())}


def _write_json(path: Path, value: Any) -> None:
    with atomic_writer(path) as fh:
        json.dump(value, fh, indent=2, ensure_ascii=False, default=str)
        fh.write("\n")
