"""Plan the stages of a recipe and run them in one run folder, skipping what is already done.

The plan, in order: data, generate, filter, eval of the teacher and of the baseline on every evaluation set, one
train stage per method entry, eval of every trained student on every set, report. Each stage lives in its own
folder of the run folder (data/, generate/, filter/, train/NAME/, eval/MODEL/SET/, report/) and reads only the
outputs of the stages it names.

Skipping. A stage's input key is the sha256 of its resolved configuration, the digests of the outputs it reads
(recorded when the stages that wrote them finished) and of any outside file (a benchmark copy, a template file),
and the rdistill version (manifest.stage_key). A stage whose manifest entry is done with the same key, and whose
outputs are still there, is skipped. A changed stage runs again; its new outputs change the keys of the stages that
read them, so everything downstream of a real change runs again too, and nothing else (changing an evaluation set
re-runs that set's evaluations and the report, not generation). `force` re-runs the named stages and everything
downstream of them.

Interruptions. A stage writes into RUN/.partial/FOLDER and is renamed to RUN/FOLDER only when it finished; the
manifest marks it done after that. Killed at any point, the stage's entry says running (or failed) with its key,
and the next run with the same key hands the partial folder back to the stage (`ctx.resume`): generation appends to
its trace file, training continues from its last checkpoint. If the key changed meanwhile the partial work is
thrown away. A run killed between the rename and the manifest update finds the finished folder's own record
(FOLDER/.stage.json) and adopts it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from rdistill.errors import RdistillError, UnknownNameError
from rdistill.pipeline import stages as st
from rdistill.pipeline.manifest import (Manifest, describe_output, host, model_identity, now, output_intact,
                                        package_versions, path_digest, stage_key)
from rdistill.pipeline.recipe import SETTING_FIELDS, LoadedRecipe
from rdistill.pipeline.star import run_star, star_stage_name
from rdistill.pipeline.targeted import CONTROL as TARGETED_RANDOM
from rdistill.pipeline.targeted import STAGE as TARGETED
from rdistill.pipeline.targeted import run_targeted, run_targeted_random

# Students made by the closed-loop stages: evaluated model name -> the stage whose "student" output it is.
LOOP_STUDENTS = {"star": lambda recipe: star_stage_name(recipe.star.iterations),
                 "targeted": lambda recipe: TARGETED, "targeted_random": lambda recipe: TARGETED_RANDOM}

log = logging.getLogger(__name__)

PARTIAL_DIR = ".partial"
STAGE_RECORD = ".stage.json"
LOCK_FILE = ".lock"


@dataclass
class StageSpec:
    name: str  # data, generate, filter, train:NAME, eval:MODEL:SET, report
    kind: str  # data, generate, filter, train, eval, report
    folder: str  # relative to the run folder
    reads: list[tuple[str, str | None]]  # (stage, output name or None for all of them)
    config: dict[str, Any]  # what the stage is told, as it enters the key
    run: Callable[[st.StageContext], st.StageResult]
    external: dict[str, str] = field(default_factory=dict)  # outside files read: label -> path

    @property
    def deps(self) -> list[str]:
        return list(dict.fromkeys(stage for stage, _ in self.reads))


class RunObserver:
    """What a run reports as it goes; the default logs. The CLI draws progress bars from the same calls."""

    def run_started(self, run_dir: Path, stages: list[StageSpec]) -> None:
        log.info("run folder %s: %d stages", run_dir, len(stages))

    def stage_skipped(self, stage: StageSpec, index: int, total: int, reason: str) -> None:
        log.info("[%d/%d] %s: skipped (%s)", index, total, stage.name, reason)

    def stage_started(self, stage: StageSpec, index: int, total: int, reason: str) -> None:
        log.info("[%d/%d] %s: running (%s)", index, total, stage.name, reason)

    def stage_finished(self, stage: StageSpec, entry: dict[str, Any]) -> None:
        log.info("%s: done in %.1fs", stage.name, entry.get("seconds") or 0.0)

    def stage_failed(self, stage: StageSpec, error: BaseException) -> None:
        log.info("%s: stopped (%s)", stage.name, error)

    def run_finished(self, result: "RunResult") -> None:
        pass

    def generation(self, progress) -> None:
        """rdistill.generate.Progress of the generate stage."""

    def training(self, progress) -> None:
        """rdistill.train.callbacks.Progress after every optimizer step."""

    def evaluation(self, phase: str, done: int, total: int) -> None:
        """Answers (and quality probes) done of an eval stage."""

    def note(self, text: str) -> None:
        log.info("%s", text)


@dataclass
class StageOutcome:
    name: str
    status: str  # ran, resumed, skipped
    reason: str
    seconds: float


@dataclass
class RunResult:
    run_dir: Path
    manifest_path: Path
    outcomes: list[StageOutcome]
    report_dir: Path | None = None
    headline: dict[str, Any] | None = None

    @property
    def report_html(self) -> Path | None:
        return self.report_dir / "report.html" if self.report_dir else None

    @property
    def report_markdown(self) -> Path | None:
        return self.report_dir / "report.md" if self.report_dir else None

    def ran(self) -> list[str]:
        return [o.name for o in self.outcomes if o.status != "skipped"]

    def skipped(self) -> list[str]:
        return [o.name for o in self.outcomes if o.status == "skipped"]


# -- the plan ------------------------------------------------------------------------------------------------------

def _student_files(folder: Path) -> dict[str, str]:
    """A finished student's files whose content is the student (its record and its weights), as outside inputs."""
    names = ["rdistill_train.json", "adapter/adapter_model.safetensors", "adapter/adapter_config.json",
             "model.safetensors", "config.json"]
    return {f"reuse.{folder.name}.{name}": str(folder / name) for name in names if (folder / name).is_file()}


def plan_stages(loaded: LoadedRecipe) -> list[StageSpec]:
    recipe = loaded.recipe
    plan: list[StageSpec] = []

    external: dict[str, str] = {}
    data_config = recipe.data.model_dump(mode="json")
    for group, sources in (("train", dict(enumerate(recipe.data.train))), ("eval", recipe.data.eval)):
        for key, source in sources.items():
            for attr in ("path", "file"):
                value = getattr(source, attr)
                if value is not None:
                    label = f"data.{group}.{key}.{attr}"
                    external[label] = value
                    data_config[group][key][attr] = f"<{label}>"  # the content counts, not where it lies
    if recipe.data.validation is not None:
        for attr in ("path", "file"):
            value = getattr(recipe.data.validation, attr)
            if value is not None:
                external[f"data.validation.{attr}"] = value
                data_config["validation"][attr] = f"<data.validation.{attr}>"
    else:
        del data_config["validation"]  # recipes without one keep the data stage's key they had
    if recipe.reuse is not None:
        external["reuse.run.train"] = str(Path(recipe.reuse.run) / "data" / st.TRAIN_FILE)
    plan.append(StageSpec("data", "data", "data", [], data_config, st.run_data, external))
    _plan_training_side(recipe, plan)
    return _plan_evaluation(recipe, plan)


def _plan_training_side(recipe, plan: list[StageSpec]) -> None:
    """generate and filter (unless the recipe only evaluates a finished run's students)."""
    if recipe.reuse is not None:
        return
    teacher_eval = recipe.teacher.eval_model or recipe.teacher.model
    generate = recipe.generate.model_dump(mode="json")
    gen_external = {}
    if recipe.generate.templates:
        gen_external["generate.templates"] = recipe.generate.templates
        generate["templates"] = "<generate.templates>"
    plan.append(StageSpec("generate", "generate", "generate", [("data", "train")],
                          {"teacher": recipe.teacher.model, "identity": model_identity(recipe.teacher.model),
                           "generate": generate}, st.run_generate, gen_external))
    plan.append(StageSpec("filter", "filter", "filter", [("generate", "traces")],
                          {"filter": recipe.filter.model_dump(mode="json")}, st.run_filter))


def _plan_evaluation(recipe, plan: list[StageSpec]) -> list[StageSpec]:
    """select:baseline, the evaluations, the trainings and closed loops they need, and the report."""
    teacher_eval = recipe.teacher.eval_model or recipe.teacher.model
    eval_common = recipe.eval.model_dump(mode="json", exclude={"models", "sets", "batch_size", "concurrency"})
    eval_common["judge_identity"] = model_identity(recipe.eval.judge) if recipe.eval.judge else None
    sets = recipe.eval_sets()
    models = recipe.eval_models()

    baseline_spec = recipe.student.baseline_model or recipe.student.model
    select_baseline = st.selects_baseline_prompt(recipe)
    reused = {name: _student_files(Path(recipe.reuse.run) / "train" / name) for name in recipe.reused_students()}

    def eval_stage(model: str, set_name: str) -> StageSpec:
        role, styles = st.eval_styles(recipe, model)
        reads: list[tuple[str, str | None]] = [("data", f"eval.{set_name}")]
        if model == "teacher":
            served = {"model": teacher_eval, "identity": model_identity(teacher_eval)}
        elif model == "baseline":
            served = {"model": baseline_spec, "identity": model_identity(baseline_spec)}
            if select_baseline:  # the prompt chosen on the validation slice
                reads.append((st.SELECT_BASELINE, "choice"))
                styles = "chosen on validation"
        elif model in LOOP_STUDENTS:
            served = {"model": recipe.student.trained_model}
            reads.append((LOOP_STUDENTS[model](recipe), "student"))
        elif model in reused:
            # A finished run's student: its files are outside inputs (their content enters the key).
            served = {"model": recipe.student.trained_model, "reused_from": str(Path(recipe.reuse.run).resolve())}
            config = {"role": role, "styles": styles, **served, "eval": eval_common, "set": set_name}
            return StageSpec(f"eval:{model}:{set_name}", "eval", f"eval/{model}/{set_name}", reads, config,
                             lambda ctx, m=model, s=set_name: st.run_eval(ctx, m, s), reused[model])
        else:
            served = {"model": recipe.student.trained_model}  # the folder's digest comes in through `reads`
            reads.append((f"train:{model}", "student"))
        config = {"role": role, "styles": styles, **served, "eval": eval_common, "set": set_name}
        return StageSpec(f"eval:{model}:{set_name}", "eval", f"eval/{model}/{set_name}", reads, config,
                         lambda ctx, m=model, s=set_name: st.run_eval(ctx, m, s))

    for model in models:
        if model in ("teacher", "baseline"):
            if model == "baseline" and select_baseline:
                config = {"role": "baseline", "styles": st.eval_styles(recipe, "baseline")[1], "model": baseline_spec,
                          "identity": model_identity(baseline_spec), "eval": {**eval_common, "faithfulness_n": 0}}
                plan.append(StageSpec(st.SELECT_BASELINE, "select", "select/baseline", [("data", "validation")],
                                      config, st.run_select_baseline))
            plan.extend(eval_stage(model, s) for s in sets)

    for name in recipe.train.methods:
        launch = recipe.train.accelerate.model_dump(mode="json") if recipe.train.accelerate else None
        config = {"student": recipe.student.model, "identity": model_identity(recipe.student.model),
                  "method": recipe.train.method_of(name), "options": recipe.train.methods[name].options,
                  "settings": recipe.train.settings_for(name), "accelerate": launch}
        plan.append(StageSpec(f"train:{name}", "train", f"train/{name}", [("filter", "clean")], config,
                              lambda ctx, n=name: st.run_train(ctx, n)))

    if recipe.star is not None:
        for i in range(1, recipe.star.iterations + 1):
            reads = [("data", "train")] + ([(star_stage_name(i - 1), "student")] if i > 1 else [])
            config = {"star": recipe.star.model_dump(mode="json"), "student": recipe.student.model,
                      "identity": model_identity(recipe.student.model),
                      "sampler": recipe.student.baseline_model or recipe.student.model,
                      "trained_model": recipe.student.trained_model,
                      "settings": {k: getattr(recipe.train, k) for k in SETTING_FIELDS},
                      "filter": recipe.filter.model_dump(mode="json"),
                      "generate": {k: getattr(recipe.generate, k) for k in ("max_tokens", "seed", "templates")}}
            plan.append(StageSpec(star_stage_name(i), "star", f"star/{i}", reads, config,
                                  lambda ctx, n=i: run_star(ctx, n)))

    if recipe.targeted is not None:
        t = recipe.targeted
        config = {"targeted": t.model_dump(mode="json"), "teacher": recipe.teacher.model,
                  "identity": model_identity(recipe.teacher.model), "trained_model": recipe.student.trained_model,
                  "generate": recipe.generate.model_dump(mode="json"), "filter": recipe.filter.model_dump(mode="json"),
                  "settings": recipe.train.settings_for(t.student) if t.student in recipe.train.methods else None}
        reads = [("data", "train"), *[("data", f"eval.{name}") for name in recipe.data.eval],
                 ("filter", "clean"), (f"train:{t.student}", "student")]
        plan.append(StageSpec(TARGETED, "targeted", "targeted", reads, config, run_targeted))
        if t.control:
            plan.append(StageSpec(TARGETED_RANDOM, "targeted", "targeted-random", [*reads, (TARGETED, "summary")],
                                  config, run_targeted_random))

    for model in models:
        if model not in ("teacher", "baseline"):
            plan.extend(eval_stage(model, s) for s in sets)

    eval_names = [s.name for s in plan if s.kind == "eval"]
    if eval_names:
        report_external = {"report.prices": recipe.report.prices} if recipe.report.prices else {}
        report_config = recipe.report.model_dump(mode="json")
        if recipe.report.prices:
            report_config["prices"] = "<report.prices>"
        ledger = [("generate", "ledger")] if any(s.name == "generate" for s in plan) else []
        plan.append(StageSpec("report", "report", "report",
                              [*ledger, *[(name, None) for name in eval_names]], report_config,
                              lambda ctx, names=tuple(eval_names): st.run_report(ctx, list(names)),
                              report_external))
    return plan


def stage_groups(plan: list[StageSpec]) -> list[str]:
    """Names `force` accepts: every stage, each kind (train, eval) and each eval model (eval:MODEL)."""
    names = [s.name for s in plan]
    groups = {s.kind for s in plan} | {":".join(s.name.split(":")[:2]) for s in plan if s.kind == "eval"}
    return names + sorted(groups - set(names)) + ["all"]


def forced_stages(plan: list[StageSpec], force: list[str]) -> set[str]:
    """The stages `force` names (a stage, a group such as train or eval:teacher, or all) and all downstream."""
    chosen: set[str] = set()
    for item in force:
        item = item.strip()
        matched = {s.name for s in plan if item == "all" or s.name == item or s.name.startswith(item + ":")}
        if not matched:
            raise UnknownNameError("stage", item, stage_groups(plan))
        chosen |= matched
    changed = True
    while changed:
        changed = False
        for s in plan:
            if s.name not in chosen and any(d in chosen for d in s.deps):
                chosen.add(s.name)
                changed = True
    return chosen


# -- running -------------------------------------------------------------------------------------------------------

def default_run_dir(loaded: LoadedRecipe) -> Path:
    return Path("runs") / loaded.recipe.name


def run_recipe(loaded: LoadedRecipe, run_dir: str | Path | None = None, *, force: list[str] = (),
               observer: RunObserver | None = None, plan: list[StageSpec] | None = None) -> RunResult:
    """Run (or continue) the recipe in `run_dir` (default runs/NAME); see the module docstring."""
    observer = observer or RunObserver()
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(loaded)
    plan = plan if plan is not None else plan_stages(loaded)
    forced = forced_stages(plan, list(force))  # a bad --force fails before anything is written
    if run_dir.exists() and not run_dir.is_dir():
        raise RdistillError(f"run folder {run_dir} exists and is not a folder")
    with _locked(run_dir):
        manifest = Manifest.open(run_dir)
        _record_invocation(manifest, loaded, plan)
        (run_dir / "recipe.yaml").write_text(loaded.text, encoding="utf-8")
        observer.run_started(run_dir, plan)
        cache: bool | str = loaded.recipe.cache
        pool = st.ClientPool(cache)
        outcomes: list[StageOutcome] = []
        try:
            for index, stage in enumerate(plan, start=1):
                outcomes.append(_run_stage(stage, index, len(plan), run_dir, manifest, loaded, observer, pool,
                                           forced, cache))
        except BaseException as e:
            manifest.data["invocations"][-1].update(finished_at=now(), status="stopped",
                                                   error=f"{type(e).__name__}: {e}")
            manifest.save()
            raise
        finally:
            pool.close_all()
        stale = sorted(set(manifest.stages) - {s.name for s in plan})
        for name in stale:  # stages the recipe no longer has; their folders are left as they are
            manifest.data.setdefault("stale_stages", {})[name] = manifest.stages.pop(name)
        data_stage = manifest.stages.get("data") or {}
        if data_stage.get("status") == "done":  # what was trained and evaluated on, and what it was made from
            manifest.data["data_hashes"] = {
                **{f"run:{info['path']}": info["sha256"] for info in data_stage["outputs"].values()},
                **{label.removeprefix("file:"): digest for label, digest in data_stage["inputs"].items()}}
        invocation = manifest.data["invocations"][-1]
        invocation.update(finished_at=now(), status="done", ran=[o.name for o in outcomes if o.status != "skipped"],
                          skipped=[o.name for o in outcomes if o.status == "skipped"])
        manifest.save()
    result = RunResult(run_dir, manifest.path, outcomes)
    if any(s.name == "report" for s in plan):
        result.report_dir = run_dir / "report"
        headline = result.report_dir / "headline.json"
        if headline.is_file():
            result.headline = json.loads(headline.read_text(encoding="utf-8"))
    observer.run_finished(result)
    return result


def _record_invocation(manifest: Manifest, loaded: LoadedRecipe, plan: list[StageSpec]) -> None:
    recipe = loaded.recipe
    manifest.data.update({
        "run_dir": str(manifest.run_dir),
        "recipe": {"source": loaded.source, "embedded": loaded.embedded, "sha256": loaded.sha256,
                   "overrides": loaded.overrides, "base_dir": str(loaded.base_dir),
                   "resolved": recipe.model_dump(mode="json")},
        "seeds": recipe.seeds(),
        "versions": package_versions(),
        "host": host(),
        "teacher": {"generation": model_identity(recipe.teacher.model),
                    "evaluation": model_identity(recipe.teacher.eval_model or recipe.teacher.model)},
        "student": {"training": model_identity(recipe.student.model),
                    "baseline": model_identity(recipe.student.baseline_model or recipe.student.model),
                    "trained_model": recipe.student.trained_model},
        "plan": [s.name for s in plan],
    })
    manifest.data["invocations"].append({"started_at": now(), "overrides": loaded.overrides, "status": "running"})
    manifest.save()


def _inputs(stage: StageSpec, manifest: Manifest) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for dep, wanted in stage.reads:
        entry = manifest.stage(dep) or {}
        outputs = entry.get("outputs") or {}
        if wanted is not None and wanted not in outputs:
            raise RdistillError(f"stage {stage.name} reads {dep}'s {wanted!r}, which that stage did not write")
        for name, info in outputs.items():
            if wanted is None or name == wanted:
                inputs[f"{dep}:{name}"] = info["sha256"]
    for label, path in stage.external.items():
        if not Path(path).exists():
            raise RdistillError(f"{label}: no such file or folder: {path}")
        inputs[f"file:{label}"] = path_digest(path)
    return inputs


def _intact(run_dir: Path, entry: dict[str, Any]) -> bool:
    return all(output_intact(run_dir / info["path"], info) for info in (entry.get("outputs") or {}).values())


def _run_stage(stage: StageSpec, index: int, total: int, run_dir: Path, manifest: Manifest, loaded: LoadedRecipe,
               observer: RunObserver, pool: st.ClientPool, forced: set[str], cache) -> StageOutcome:
    inputs = _inputs(stage, manifest)
    key = stage_key(stage.config, inputs)
    final = run_dir / stage.folder
    work = run_dir / PARTIAL_DIR / stage.folder
    entry = manifest.stage(stage.name) or {}
    is_forced = stage.name in forced

    if not is_forced:
        if entry.get("status") == "done" and entry.get("key") == key and _intact(run_dir, entry):
            observer.stage_skipped(stage, index, total, "unchanged")
            return StageOutcome(stage.name, "skipped", "unchanged", 0.0)
        adopted = _finished_record(final, key)
        if adopted is not None and _intact(run_dir, adopted):  # killed after the rename, before the manifest
            manifest.set_stage(stage.name, adopted)
            observer.stage_skipped(stage, index, total, "finished before the interruption")
            return StageOutcome(stage.name, "skipped", "finished before the interruption", 0.0)

    resume = (not is_forced and entry.get("status") in ("running", "failed") and entry.get("key") == key
              and work.is_dir())
    if is_forced:
        reason = "forced"
    elif resume:
        reason = "resuming an interrupted run"
    elif not entry:
        reason = "new"
    elif entry.get("key") != key:
        reason = "inputs changed"
    else:
        reason = "outputs missing" if entry.get("status") == "done" else "previous attempt did not finish"
    if not resume:
        _remove(work)
    _remove(final)
    work.mkdir(parents=True, exist_ok=True)
    spent_before = float(entry.get("seconds") or 0.0) if resume else 0.0
    attempts = int(entry.get("attempts") or 0) + 1 if resume else 1
    running = {"key": key, "status": "running", "started_at": now(), "inputs": inputs, "attempts": attempts,
               "seconds": round(spent_before, 3), "folder": stage.folder}
    manifest.set_stage(stage.name, running)
    observer.stage_started(stage, index, total, reason)

    final_dirs = {name: (run_dir / manifest.stages[name]["folder"]).resolve()
                  for name in manifest.stages if manifest.stages[name].get("status") == "done"}
    ctx = st.StageContext(recipe=loaded.recipe, run_dir=run_dir, work=work.resolve(), resume=resume,
                          observer=observer, clients=pool, final_dirs=final_dirs, cache=cache)
    started = time.perf_counter()
    try:
        result = stage.run(ctx)
    except BaseException as e:
        failed = {**running, "status": "failed", "error": f"{type(e).__name__}: {e}", "stopped_at": now(),
                  "seconds": round(spent_before + time.perf_counter() - started, 3)}
        manifest.set_stage(stage.name, failed)
        observer.stage_failed(stage, e)
        raise
    seconds = time.perf_counter() - started
    outputs = {}
    for name, rel in result.outputs.items():
        path = (work / rel) if rel != "." else work
        if not path.exists():
            raise RdistillError(f"stage {stage.name} did not write its output {name!r} ({rel})")
        target = Path(stage.folder) if rel == "." else Path(stage.folder) / rel
        outputs[name] = {"path": target.as_posix(), **describe_output(path)}
    done = {**running, "status": "done", "finished_at": now(), "seconds": round(spent_before + seconds, 3),
            "seconds_this_attempt": round(seconds, 3), "outputs": outputs, "usage": result.usage,
            "detail": result.detail}
    (work / STAGE_RECORD).write_text(json.dumps(done, indent=2, default=str), encoding="utf-8")
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work, final)
    _prune_empty(work.parent, stop=run_dir)
    manifest.set_stage(stage.name, done)
    observer.stage_finished(stage, done)
    return StageOutcome(stage.name, "resumed" if resume else "ran", reason, seconds)


def _finished_record(final: Path, key: str) -> dict[str, Any] | None:
    record = final / STAGE_RECORD
    if not record.is_file():
        return None
    try:
        entry = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return entry if entry.get("key") == key and entry.get("status") == "done" else None


def _prune_empty(folder: Path, *, stop: Path) -> None:
    """Remove `folder` and its parents up to (not including) `stop` while they are empty."""
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone)
            return
        folder = folder.parent


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """One run per run folder at a time (the OS drops the lock when the process dies, even by SIGKILL)."""
    import fcntl

    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK_FILE, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RdistillError(f"another rdistill run is using {run_dir}; wait for it or choose another "
                                "--run-dir") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


__all__ = ["RunObserver", "RunResult", "StageOutcome", "StageSpec", "forced_stages",
           "plan_stages", "run_recipe", "stage_groups"]
