"""Targeted distillation as recipe stages (pipeline/targeted.py) with tiny models on the hf: backend: the trained
student is probed on a pool, only its failures go to the teacher, and a control sends as many random pool problems."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from test_pipeline_star import student  # noqa: E402,F401  (fixture: a tiny student that knows some answers)
from test_train_random_student import one_torch_thread  # noqa: E402,F401

from rdistill.pipeline.recipe import RecipeError, load_recipe_text  # noqa: E402
from rdistill.pipeline.runner import plan_stages, run_recipe  # noqa: E402


def recipe_text(student, *, probed="cot_sft") -> str:
    return f"""\
name: targeted
cache: false
teacher:
  model: hf:{student}
student:
  model: {student}
  baseline_model: hf:{student}
  trained_model: "hf:{{folder}}"
data:
  train:
    - synth: arithmetic
      n: 6
      steps: 1-2
  eval:
    heldout: {{synth: arithmetic, n: 4, steps: 1-2, split: test}}
generate:
  max_tokens: 24
filter:
  require_correct: false
  check_arithmetic: false
  check_grounded: false
train:
  lora: false
  max_steps: 2
  batch_size: 2
  save_steps: 50
  methods:
    cot_sft: {{}}
targeted:
  student: {probed}
  pool: {{synth: arithmetic, n: 8, steps: 1-2, seed: 3}}
eval:
  models: [cot_sft, targeted, targeted_random]
  max_tokens: 16
  faithfulness_n: 0
"""


def test_the_probed_student_must_be_a_method_entry(student, tmp_path):
    with pytest.raises(RecipeError, match="targeted.student.*unknown method entry"):
        load_recipe_text(recipe_text(student, probed="cot"), base_dir=tmp_path)


@pytest.fixture(scope="module")
def targeted_run(student, tmp_path_factory):
    """(loaded recipe, run result, its folder): the recipe above, run once for the tests below."""
    tmp_path = tmp_path_factory.mktemp("targeted-run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RDISTILL_CACHE", str(tmp_path / "cache"))
        loaded = load_recipe_text(recipe_text(student), base_dir=tmp_path)
        return loaded, run_recipe(loaded, tmp_path / "run"), tmp_path


def test_targeted_sends_only_failures_and_the_control_as_many_random_problems(targeted_run):
    loaded, result, tmp_path = targeted_run
    plan = {s.name: s for s in plan_stages(loaded)}
    assert ("train:cot_sft", "student") in plan["targeted"].reads
    assert ("targeted", "summary") in plan["targeted:random"].reads
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    targeted, control = stages["targeted"]["detail"], stages["targeted:random"]["detail"]
    assert targeted["solved"] + targeted["failed"] == targeted["pool"] > 0
    assert targeted["sent_to_teacher"] == targeted["failed"] == control["drawn"] == control["sent_to_teacher"]
    probe = [json.loads(line) for line in (tmp_path / "run" / "targeted" / "probe.jsonl").read_text().splitlines()]
    failed = {p["problem_id"] for p in probe if not p["correct"]}
    if failed:
        sent = [json.loads(line) for line in (tmp_path / "run" / "targeted" / "new.jsonl").read_text().splitlines()]
        assert {t["problem_id"] for t in sent} == failed
    clean = len((tmp_path / "run" / "filter" / "clean.jsonl").read_text().splitlines())
    assert targeted["trained_on"] == clean + targeted["new_traces_kept"]
    assert {"eval:targeted:heldout", "eval:targeted_random:heldout"} <= set(result.ran())


def test_compare_tabulates_the_run_with_the_reference_paired(targeted_run, tmp_path, capsys):
    from rdistill.cli import main
    from rdistill.report.method_table import method_table

    _, _, run_root = targeted_run
    tmp_path = run_root
    table = method_table(tmp_path / "run", against="cot_sft")
    assert [row["label"] for row in table["rows"]] == ["cot_sft", "targeted", "targeted_random"]
    cell = table["rows"][1]["cells"]["heldout"]
    assert cell["n"] == 4 and "paired" in cell and "paired" not in table["rows"][0]["cells"]["heldout"]
    generate = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["generate"]["usage"]
    shared = generate["prompt_tokens"] + generate["completion_tokens"]
    assert table["rows"][0]["teacher_tokens"] == shared < table["rows"][1]["teacher_tokens"] or \
        json.loads((tmp_path / "run" / "targeted" / "summary.json").read_text())["failed"] == 0
    assert len(table["verdicts"]) == 2  # targeted and the control, against cot_sft on the one set
    main(["compare", str(tmp_path / "run"), "-o", str(tmp_path / "table.md")])
    assert "| cot_sft |" in (tmp_path / "table.md").read_text() and (tmp_path / "table.json").is_file()
    with pytest.raises(SystemExit) as exited:
        main(["compare", str(tmp_path)])
    assert exited.value.code == 2 and "not a run folder" in capsys.readouterr().err


def test_a_recipe_can_evaluate_a_finished_runs_students_without_training(targeted_run, student, tmp_path,
                                                                          monkeypatch):
    _, _, run_root = targeted_run
    monkeypatch.setenv("RDISTILL_CACHE", str(tmp_path / "cache"))
    reuse = f"""\
name: limits
cache: false
teacher:
  model: hf:{student}
student:
  model: {student}
  baseline_model: hf:{student}
  trained_model: "hf:{{folder}}"
reuse:
  run: {run_root / "run"}
  students: [cot_sft]
data:
  eval:
    longer: {{synth: arithmetic, n: 3, steps: 3-4, seed: 5, split: test}}
eval:
  max_tokens: 8
  faithfulness_n: 0
"""
    loaded = load_recipe_text(reuse, base_dir=tmp_path)
    assert loaded.recipe.eval_models() == ["teacher", "baseline", "cot_sft"]
    result = run_recipe(loaded, tmp_path / "run")
    assert "eval:cot_sft:longer" in result.ran() and not any(n.startswith(("generate", "train")) for n in result.ran())
    summary = json.loads((tmp_path / "run" / "eval" / "cot_sft" / "longer" / "trained.summary.json").read_text())
    assert summary["model"] == f"hf:{run_root / 'run' / 'train' / 'cot_sft'}"
    # An evaluation set that asks one of the reused run's training questions is refused.
    trained_on = json.loads((run_root / "run" / "data" / "train.jsonl").read_text().splitlines()[0])["question"]
    (tmp_path / "asked.jsonl").write_text(json.dumps({"id": "x", "question": trained_on, "answer": "1"}) + "\n")
    clash = reuse.replace("longer: {synth: arithmetic, n: 3, steps: 3-4, seed: 5, split: test}",
                          f"longer: {{file: {tmp_path / 'asked.jsonl'}}}")
    from rdistill.errors import InputError

    with pytest.raises(InputError, match="also in the training data"):
        run_recipe(load_recipe_text(clash, base_dir=tmp_path), tmp_path / "run2")
