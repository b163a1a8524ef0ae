"""The stage runner: skips stages whose inputs did not change, re-runs a changed stage and what reads it, resumes an
interrupted stage with its partial work, and keeps the manifest honest. Fake stages here (fast, no models); the real
stages run end to end in test_pipeline_e2e.py."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from rdistill.errors import InputError, RdistillError
from rdistill.pipeline.manifest import MANIFEST_FILE, stage_key
from rdistill.pipeline.recipe import load_recipe_text
from rdistill.pipeline.runner import LOCK_FILE, PARTIAL_DIR, StageSpec, plan_stages, run_recipe
from rdistill.pipeline.stages import StageResult
from test_pipeline_recipe import MINIMAL


class Boom(Exception):
    pass


class FakePipeline:
    """a -> b -> c, and a -> d. Each stage writes one file; `settings` are their configs; `calls` counts runs."""

    def __init__(self, tmp_path: Path):
        self.loaded = load_recipe_text(MINIMAL, base_dir=tmp_path)
        self.run_dir = tmp_path / "run"
        self.settings = {"a": {"text": "hello"}, "b": {"suffix": "!", "noise": 0}, "c": {}, "d": {}}
        self.calls: dict[str, int] = {k: 0 for k in "abcd"}
        self.fail: dict[str, type[BaseException]] = {}
        self.seen_resume: dict[str, list[tuple[bool, bool]]] = {k: [] for k in "abcd"}

    def plan(self) -> list[StageSpec]:
        return [
            StageSpec("a", "data", "a", [], dict(self.settings["a"]), self._a),
            StageSpec("b", "generate", "b", [("a", "out")], dict(self.settings["b"]), self._b),
            StageSpec("c", "filter", "c", [("b", "out")], dict(self.settings["c"]), self._reader("c", "b")),
            StageSpec("d", "train", "d", [("a", "out")], dict(self.settings["d"]), self._reader("d", "a")),
        ]

    def run(self, **kwargs):
        return run_recipe(self.loaded, self.run_dir, plan=self.plan(), **kwargs)

    def manifest(self) -> dict:
        return json.loads((self.run_dir / MANIFEST_FILE).read_text())

    def _a(self, ctx):
        self.calls["a"] += 1
        (ctx.work / "out.txt").write_text(self.settings["a"]["text"])
        return StageResult({"out": "out.txt"})

    def _b(self, ctx):
        self.calls["b"] += 1
        partial = ctx.work / "partial.txt"
        self.seen_resume["b"].append((ctx.resume, partial.exists()))
        partial.write_text("half done")
        if "b" in self.fail:
            raise self.fail.pop("b")("stopped mid-stage")
        text = ctx.output("a", "out.txt").read_text().upper() + self.settings["b"]["suffix"]
        (ctx.work / "out.txt").write_text(text)
        return StageResult({"out": "out.txt"}, usage={"calls": 2, "cost_usd": 0.5}, detail={"chars": len(text)})

    def _reader(self, name, source):
        def run(ctx):
            self.calls[name] += 1
            (ctx.work / "out.txt").write_text(ctx.output(source, "out.txt").read_text() + f" via {name}")
            return StageResult({"out": "out.txt"})
        return run


@pytest.fixture
def fake(tmp_path):
    return FakePipeline(tmp_path)


def test_first_run_runs_everything_and_a_rerun_skips_everything(fake):
    first = fake.run()
    assert first.ran() == ["a", "b", "c", "d"] and fake.calls == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert (fake.run_dir / "c" / "out.txt").read_text() == "HELLO! via c"
    m = fake.manifest()
    assert all(m["stages"][s]["status"] == "done" and len(m["stages"][s]["key"]) == 64 for s in "abcd")
    assert m["stages"]["b"]["outputs"]["out"]["path"] == "b/out.txt" and m["stages"]["b"]["usage"]["calls"] == 2
    assert m["stages"]["b"]["inputs"] == {"a:out": m["stages"]["a"]["outputs"]["out"]["sha256"]}
    assert m["totals"]["calls"] == 2 and m["totals"]["cost_usd"] == 0.5
    assert {"recipe", "seeds", "versions", "teacher", "student", "invocations"} <= set(m)
    assert m["recipe"]["resolved"]["name"] == "tiny" and m["versions"]["rdistill"]
    assert not (fake.run_dir / PARTIAL_DIR).exists()

    second = fake.run()
    assert second.ran() == [] and second.skipped() == ["a", "b", "c", "d"]
    assert fake.calls == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert fake.manifest()["invocations"][-1]["skipped"] == ["a", "b", "c", "d"]


def test_a_changed_stage_and_what_reads_it_run_again_and_nothing_else(fake):
    fake.run()
    fake.settings["b"]["suffix"] = "?"
    result = fake.run()
    assert result.ran() == ["b", "c"] and [o.reason for o in result.outcomes if o.name == "b"] == ["inputs changed"]
    assert fake.calls == {"a": 1, "b": 2, "c": 2, "d": 1}
    assert (fake.run_dir / "c" / "out.txt").read_text() == "HELLO? via c"


def test_a_rerun_that_writes_the_same_output_leaves_its_readers_alone(fake):
    fake.run()
    fake.settings["b"]["noise"] = 1  # changes b's key, not what b writes
    assert fake.run().ran() == ["b"]


def test_an_upstream_change_reaches_every_stage_below_it(fake):
    fake.run()
    fake.settings["a"]["text"] = "bye"
    assert fake.run().ran() == ["a", "b", "c", "d"]
    assert (fake.run_dir / "d" / "out.txt").read_text() == "bye via d"


def test_force_reruns_a_stage_and_everything_downstream(fake):
    fake.run()
    result = fake.run(force=["b"])
    assert result.ran() == ["b", "c"] and {o.reason for o in result.outcomes if o.status != "skipped"} == {"forced"}
    assert fake.run(force=["all"]).ran() == ["a", "b", "c", "d"]
    with pytest.raises(RdistillError, match="unknown stage 'bb'"):
        fake.run(force=["bb"])


def test_an_interrupted_stage_never_looks_done_and_the_next_run_resumes_its_partial_work(fake):
    fake.fail["b"] = Boom
    with pytest.raises(Boom):
        fake.run()
    m = fake.manifest()
    assert m["stages"]["b"]["status"] == "failed" and "stopped mid-stage" in m["stages"]["b"]["error"]
    assert "c" not in m["stages"] and not (fake.run_dir / "b").exists()
    assert (fake.run_dir / PARTIAL_DIR / "b" / "partial.txt").exists()
    assert m["invocations"][-1]["status"] == "stopped"

    result = fake.run()
    assert result.skipped() == ["a"] and result.ran() == ["b", "c", "d"]
    assert fake.seen_resume["b"] == [(False, False), (True, True)]  # handed its own partial work back
    assert [o.status for o in result.outcomes if o.name == "b"] == ["resumed"]
    assert fake.manifest()["stages"]["b"]["attempts"] == 2


def test_a_keyboard_interrupt_is_recorded_and_resumed_too(fake):
    fake.fail["b"] = KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fake.run()
    assert fake.manifest()["stages"]["b"]["status"] == "failed"
    fake.run()
    assert fake.seen_resume["b"][-1] == (True, True)


def test_partial_work_for_other_inputs_is_thrown_away(fake):
    fake.fail["b"] = Boom
    with pytest.raises(Boom):
        fake.run()
    fake.settings["b"]["suffix"] = "?"
    fake.run()
    assert fake.seen_resume["b"][-1] == (False, False)


def test_a_run_killed_after_the_rename_adopts_the_finished_stage(fake):
    fake.run()
    manifest = fake.manifest()
    manifest["stages"]["b"]["status"] = "running"  # as if killed between the rename and the manifest update
    (fake.run_dir / MANIFEST_FILE).write_text(json.dumps(manifest))
    result = fake.run()
    assert result.ran() == [] and fake.calls["b"] == 1
    assert fake.manifest()["stages"]["b"]["status"] == "done"


def test_missing_outputs_make_a_stage_run_again(fake):
    fake.run()
    (fake.run_dir / "b" / "out.txt").unlink()
    result = fake.run()
    assert result.ran() == ["b"] and [o.reason for o in result.outcomes if o.name == "b"] == ["outputs missing"]


def test_one_run_at_a_time_per_run_folder(fake):
    fake.run_dir.mkdir()
    with open(fake.run_dir / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RdistillError, match="another rdistill run is using"):
            fake.run()
    assert fake.run().ran() == ["a", "b", "c", "d"]


# -- the real plan -------------------------------------------------------------------------------------------------

def keys(overrides: list[str], tmp_path: Path) -> dict[str, str]:
    loaded = load_recipe_text(MINIMAL, base_dir=tmp_path, overrides=["train.methods.answer_only=", *overrides])
    return {s.name: stage_key(s.config, {}) for s in plan_stages(loaded)}


def test_the_plan_orders_stages_so_each_reads_only_finished_ones(tmp_path):
    plan = plan_stages(load_recipe_text(MINIMAL, base_dir=tmp_path, overrides=["train.methods.answer_only="]))
    names = [s.name for s in plan]
    assert names == ["data", "generate", "filter", "eval:teacher:heldout", "eval:baseline:heldout", "train:cot_sft",
                     "train:answer_only", "eval:cot_sft:heldout", "eval:answer_only:heldout", "report"]
    for i, stage in enumerate(plan):
        assert set(stage.deps) <= set(names[:i])
    by_name = {s.name: s for s in plan}
    assert by_name["eval:cot_sft:heldout"].reads == [("data", "eval.heldout"), ("train:cot_sft", "student")]
    assert by_name["eval:teacher:heldout"].reads == [("data", "eval.heldout")]  # not the training data


@pytest.mark.parametrize("override, changed", [
    ("eval.max_tokens=64", {"eval:teacher:heldout", "eval:baseline:heldout", "eval:cot_sft:heldout",
                            "eval:answer_only:heldout"}),
    ("generate.max_tokens=64", {"generate"}),
    ("filter.check_grounded=true", {"filter"}),
    ("train.methods.cot_sft.epochs=2", {"train:cot_sft"}),
    ("train.epochs=2", {"train:cot_sft", "train:answer_only"}),
    ("data.eval.heldout.n=3", {"data"}),  # eval stages see the new set through its file's digest
    ("teacher.model=offline:gemma-3-270m", {"generate", "eval:teacher:heldout"}),
    ("eval.batch_size=2", set()),  # throughput only
    ("teacher.concurrency=2", set()),
    ("teacher.backend_options={slots: 4}", set()),  # speed, not answers
    ("student.backend_options={slots: 4, threads: 1}", set()),
])
def test_a_recipe_change_changes_the_configuration_of_exactly_the_stages_it_concerns(tmp_path, override, changed):
    before, after = keys([], tmp_path), keys([override], tmp_path)
    assert {name for name in before if before[name] != after[name]} == changed


def test_eval_tasks_add_a_prompt_to_that_students_eval_stages_and_nothing_else(tmp_path):
    step_by_step = ["train.methods.sbs={method: step_by_step}"]
    before, after = keys(step_by_step, tmp_path), keys(step_by_step + ["train.methods.sbs.eval_tasks=[rationale]"],
                                                       tmp_path)
    assert {name for name in before if before[name] != after[name]} == {"eval:sbs:heldout"}
    loaded = load_recipe_text(MINIMAL, base_dir=tmp_path, overrides=step_by_step + [
        "train.methods.sbs.eval_tasks=[rationale]"])
    plan = {s.name: s for s in plan_stages(loaded)}
    assert plan["eval:sbs:heldout"].config["styles"] == ["trained", "trained:rationale"]
    assert plan["eval:cot_sft:heldout"].config["styles"] == ["trained"]


def test_data_stage_refuses_evaluation_questions_that_are_also_training_questions(tmp_path):
    from rdistill.data.synth import generate
    from rdistill.jsonl import write_records

    train = generate("arithmetic", 4, seed=0, split="train", steps=(1, 4))
    write_records(tmp_path / "leak.jsonl", [train[2]])
    loaded = load_recipe_text(MINIMAL, base_dir=tmp_path, overrides=[f"data.eval.leak.file={tmp_path}/leak.jsonl"])
    data_only = [s for s in plan_stages(loaded) if s.name == "data"]
    with pytest.raises(InputError, match=r"1 of the 1 problems of evaluation set 'leak' are also in the training"):
        run_recipe(loaded, tmp_path / "run", plan=data_only)
    assert not (tmp_path / "run" / "data").exists()


def test_data_stage_mixes_sources_drops_duplicates_and_writes_each_eval_set(tmp_path):
    loaded = load_recipe_text(MINIMAL, base_dir=tmp_path, overrides=[
        "data.train=[{synth: arithmetic, n: 4}, {synth: arithmetic, n: 6}, {synth: coin_flip, n: 3}]"])
    run_recipe(loaded, tmp_path / "run", plan=[s for s in plan_stages(loaded) if s.name == "data"])
    lines = (tmp_path / "run" / "data" / "train.jsonl").read_text().splitlines()
    summary = json.loads((tmp_path / "run" / "data" / "summary.json").read_text())
    assert len(lines) == 9 and summary["duplicates_dropped"] == 4  # the first 4 of the 6 are the same 4 problems
    assert summary["eval"]["heldout"]["problems"] == 2 and (tmp_path / "run/data/eval/heldout.jsonl").is_file()


def test_training_under_accelerate_is_the_train_command_with_the_same_settings(tmp_path):
    import typer

    from rdistill.cli import app
    from rdistill.pipeline.recipe import train_settings
    from rdistill.pipeline.stages import launch_command, train_command

    loaded = load_recipe_text(MINIMAL, base_dir=tmp_path, overrides=[
        "train.accelerate.num_processes=2", "train.methods.cot_sft.bf16=false", "train.max_steps=5",
        "train.methods.cot_sft.method=step_by_step", "train.methods.cot_sft.options.rationale_weight=0.5"])
    recipe = loaded.recipe
    settings = train_settings(recipe, "cot_sft", student="offline:smollm2-135m-instruct",
                              output_dir=tmp_path / "out", resume=True)
    args = train_command(tmp_path / "clean.jsonl", settings, "step_by_step", recipe.train.methods["cot_sft"].options)
    cmd = launch_command(recipe.train.accelerate, args)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"] and "--multi_gpu" in cmd
    assert cmd[cmd.index("--num_processes") + 1] == "2" and cmd[cmd.index("-m", 3):][:3] == ["-m", "rdistill", "train"]
    command = typer.main.get_command(app)
    params = command.commands["train"].make_context("train", list(args[1:])).params  # every flag exists and parses
    assert params["lr"] == 1e-3 and params["epochs"] == 1.0 and params["max_steps"] == 5 and params["resume"]
    assert params["bf16"] is False and params["lora"] is True and params["method"] == "step_by_step"
    assert params["option"] == ("rationale_weight=0.5",) or params["option"] == ["rationale_weight=0.5"]


def test_headline_table_names_models_by_recipe_name_and_prints_unwrapped(tmp_path):
    import io

    from rich.console import Console

    from rdistill.pipeline.console import print_headline
    from rdistill.pipeline.runner import RunResult
    from rdistill.pipeline.stages import headline_rows

    def acc(value, n=100):
        return {"value": value, "ci": [value - 0.1, value + 0.1], "n": n}

    def row(model, role, style, value, used=False):
        return {"label": f"{model} [{style}]", "model": model, "role": role, "prompt_style": style,
                "accuracy": acc(value), "baseline_used": used}

    def paired(against, difference, p_value):
        return {"against": against, "difference": difference, "ci": [difference - 0.08, difference + 0.08], "n": 100,
                "only_first": 25, "only_second": 5, "p_value": p_value}

    student = row("runs/quickstart/train/cot_sft", "student", "trained", 0.5)
    student["paired"] = [paired("offline:qwen2.5-coder-1.5b-instruct [teacher]", -0.3, 0.0004),
                         paired("hf:offline:qwen2.5-coder-0.5b-instruct [plain]", 0.2, 0.0011)]
    report = {"benches": [{"bench": b, "rows": [
        row("offline:qwen2.5-coder-1.5b-instruct", "teacher", "teacher", 0.8),
        row("hf:offline:qwen2.5-coder-0.5b-instruct", "baseline", "plain", 0.3, used=True),
        row("hf:offline:qwen2.5-coder-0.5b-instruct", "baseline", "teacher", 0.2),
        student]} for b in ("harder", "heldout")]}
    names = {"offline:qwen2.5-coder-1.5b-instruct": "teacher", "hf:offline:qwen2.5-coder-0.5b-instruct": "baseline",
             "runs/quickstart/train/cot_sft": "cot_sft"}
    report_before = json.dumps(report, sort_keys=True)
    headline = headline_rows(report, names=names, order=["heldout", "harder"])
    assert json.dumps(report, sort_keys=True) == report_before  # the report it reads is left as it was
    assert headline["sets"] == ["heldout", "harder"]
    assert [r["name"] for r in headline["rows"]] == ["teacher", "baseline [plain]", "baseline [teacher]", "cot_sft"]
    buffer = io.StringIO()
    print_headline(Console(file=buffer, width=60), RunResult(tmp_path, tmp_path / "manifest.json", [],
                                                             tmp_path / "report", headline))
    text = buffer.getvalue()
    assert f"report: {tmp_path / 'report' / 'report.html'}" in text
    lines = [line for line in text.splitlines() if "baseline [plain]" in line and "│" in line]
    assert len(lines) == 1 and "30% [20%–40%] n=100 *" in lines[0] and "* the baseline" in text
    assert headline["rows"][1]["baseline_used_on"] == ["heldout", "harder"]
    # the student's paired differences, named as the table names the models, one line per reference
    assert "paired on the same problems" in text
    assert "cot_sft vs teacher: heldout -30 points [-38, -22] p=0.0004; harder -30 points" in text
    assert "cot_sft vs baseline [plain]: heldout +20 points [+12, +28] p=0.0011" in text


def test_students_are_served_with_the_students_backend_options_and_the_teacher_with_its_own(tmp_path):
    from rdistill.pipeline.stages import eval_backend_options

    loaded = load_recipe_text(MINIMAL, base_dir=tmp_path, overrides=[
        "teacher.backend_options={slots: 8}", "student.backend_options={slots: 32, threads: 4}"])
    assert eval_backend_options(loaded.recipe, "teacher") == {"slots": 8}
    for model in ("baseline", "cot_sft"):
        assert eval_backend_options(loaded.recipe, model) == {"slots": 32, "threads": 4}


def test_a_failed_accelerate_launch_names_its_exit_code_and_log_tail(tmp_path, monkeypatch):
    import sys
    from types import SimpleNamespace

    from rdistill.errors import RdistillError
    from rdistill.pipeline import stages
    from rdistill.pipeline.recipe import train_settings

    loaded = load_recipe_text(MINIMAL, base_dir=tmp_path, overrides=["train.accelerate.num_processes=2"])
    settings = train_settings(loaded.recipe, "cot_sft", student="offline:smollm2-135m-instruct",
                              output_dir=tmp_path / "out")
    failing = [sys.executable, "-c", "print('rank 1: out of memory'); raise SystemExit(7)"]
    monkeypatch.setattr(stages, "launch_command", lambda launch, args: failing)
    ctx = SimpleNamespace(recipe=loaded.recipe, work=tmp_path, observer=SimpleNamespace(note=lambda text: None))
    with pytest.raises(RdistillError, match=r"exited with code 7; see .*: .*rank 1: out of memory"):
        stages.launch_training(ctx, tmp_path / "clean.jsonl", settings, "cot_sft", {})


VALIDATION = "data.validation={synth: arithmetic, n: 3}"


def test_a_validation_slice_chooses_the_baseline_prompt_before_the_baseline_is_evaluated(tmp_path):
    plan = plan_stages(load_recipe_text(MINIMAL, base_dir=tmp_path, overrides=[VALIDATION]))
    names = [s.name for s in plan]
    assert names.index("select:baseline") < names.index("eval:baseline:heldout")
    by_name = {s.name: s for s in plan}
    assert by_name["select:baseline"].reads == [("data", "validation")]
    assert by_name["select:baseline"].config["styles"] == ["plain", "teacher"]
    assert by_name["eval:baseline:heldout"].reads == [("data", "eval.heldout"), ("select:baseline", "choice")]
    # Only the data stage (a new file) and the baseline's stages change; the teacher and the students do not.
    before, after = keys([], tmp_path), keys([VALIDATION], tmp_path)
    assert {name for name in before if before[name] != after[name]} == {"data", "eval:baseline:heldout"}
    assert "select:baseline" not in keys(["eval.models=[teacher, cot_sft]", VALIDATION], tmp_path)


@pytest.mark.parametrize("clash, where", [("data.eval.heldout={synth: arithmetic, n: 3, split: validation}",
                                           "evaluation set 'heldout'"),
                                          ("data.train=[{synth: arithmetic, n: 3, split: validation}]",
                                           "the training data")])
def test_the_validation_slice_shares_no_problem_with_training_or_evaluation(tmp_path, clash, where):
    loaded = load_recipe_text(MINIMAL, base_dir=tmp_path, overrides=[VALIDATION, clash])
    with pytest.raises(InputError, match=f"validation problem .* is also in {where}") as excinfo:
        run_recipe(loaded, tmp_path / "run", plan=[s for s in plan_stages(loaded) if s.name == "data"])
    assert excinfo.value.field == "data.validation"
    assert not (tmp_path / "run" / "data").exists()


def test_the_baseline_is_evaluated_once_per_set_with_the_prompt_its_validation_chose(tmp_path):
    """Real SmolLM2-135M (llama.cpp in process): both prompts on the validation slice (in one queue), the winner alone
    on each evaluation set, every set's questions asked by the first eval stage at once, and the report says where
    the choice was made."""
    from rdistill.evaluate.comparison import choose_baselines, load_result_set
    from rdistill.report.layout import prompt_choice_text

    loaded = load_recipe_text(MINIMAL, base_dir=tmp_path, overrides=[
        "data.validation={synth: arithmetic, n: 4}", "data.eval.harder={synth: arithmetic, n: 3, steps: 5}",
        "eval.max_tokens=24", "eval.faithfulness_n=0", f"cache={tmp_path / 'responses.sqlite'}"])
    wanted = {"data", "select:baseline", "eval:baseline:heldout", "eval:baseline:harder"}
    run_recipe(loaded, tmp_path / "run", plan=[s for s in plan_stages(loaded) if s.name in wanted])
    stages = json.loads((tmp_path / "run" / MANIFEST_FILE).read_text())["stages"]
    assert stages["select:baseline"]["detail"]["answered_ahead"] == {
        "requests": 8, "failed": 0, "seconds": stages["select:baseline"]["detail"]["answered_ahead"]["seconds"]}
    # heldout (2 problems) asked harder's 3 too, in one queue; harder then found all its answers in the cache
    assert stages["eval:baseline:heldout"]["detail"]["answered_ahead"]["requests"] == 5
    assert "answered_ahead" not in stages["eval:baseline:harder"]["detail"]
    assert stages["eval:baseline:harder"]["usage"]["calls"] == 0
    assert stages["eval:baseline:harder"]["usage"]["cache_hits"] == 3
    choice = json.loads((tmp_path / "run/select/baseline/choice.json").read_text())
    assert set(choice["candidates"]) == {"plain", "teacher"} and choice["n"] == 4
    assert choice["prompt"] == max(choice["candidates"], key=lambda s: (choice["candidates"][s], s == "plain"))
    assert {p.name for p in (tmp_path / "run/select/baseline").glob("*.jsonl")} == {"plain.jsonl", "teacher.jsonl"}
    evaluated = sorted((tmp_path / "run/eval/baseline/heldout").glob("*.jsonl"))
    assert [p.name for p in evaluated] == [f"{choice['prompt']}.jsonl"]  # one prompt per evaluation set
    result_set = load_result_set(evaluated[0])
    picked = choose_baselines([result_set])[result_set.model]
    assert picked["chosen_on"]["candidates"] == choice["candidates"]
    assert prompt_choice_text(picked["chosen_on"]).startswith("its prompt was chosen on validation (synth:arithmetic")


def test_the_train_stage_records_which_precision_training_chose(tmp_path, monkeypatch):
    import rdistill.train
    from rdistill.train.core import TrainResult

    loaded = load_recipe_text(MINIMAL, base_dir=tmp_path)
    train = next(s for s in plan_stages(loaded) if s.name == "train:cot_sft")

    def clean(ctx):
        (ctx.work / "clean.jsonl").write_text("", encoding="utf-8")
        return StageResult({"clean": "clean.jsonl"})

    precision = {"dtype": "float32", "reason": "this CPU has no native bf16"}

    def fake_train(traces, settings, **kwargs):  # the stage's wiring, not training (tested in test_train_*)
        settings.output_dir.mkdir(parents=True, exist_ok=True)
        return TrainResult(settings.output_dir, 0.5, 12.0, 3, {"precision": precision})

    monkeypatch.setattr(rdistill.train, "train_student", fake_train)
    run_recipe(loaded, tmp_path / "run", plan=[StageSpec("filter", "filter", "filter", [], {}, clean), train])
    detail = json.loads((tmp_path / "run" / MANIFEST_FILE).read_text())["stages"]["train:cot_sft"]["detail"]
    assert detail["precision"] == precision and detail["tokens_per_s"] == 12.0


def test_reports_name_models_by_role_and_model_not_by_path(tmp_path):
    from rdistill.pipeline.recipe import load_quickstart
    from rdistill.pipeline.stages import display_names

    names = display_names(load_quickstart([]).recipe, tmp_path / "run")
    assert names == {
        "llamaserver:offline:qwen2.5-coder-1.5b-instruct": "teacher, Qwen2.5-Coder-1.5B-Instruct",
        "llamaserver:offline:qwen2.5-coder-0.5b-instruct": "untrained student, Qwen2.5-Coder-0.5B-Instruct",
        f"llamaserver:{tmp_path}/run/train/answer_only": "answer_only student, Qwen2.5-Coder-0.5B-Instruct + LoRA",
        f"llamaserver:{tmp_path}/run/train/cot_sft": "cot_sft student, Qwen2.5-Coder-0.5B-Instruct + LoRA"}
    # MINIMAL's teacher is also its untrained student: that model string keeps no single name
    assert "offline:smollm2-135m-instruct" not in display_names(load_recipe_text(MINIMAL, base_dir=tmp_path).recipe,
                                                                tmp_path / "run")
