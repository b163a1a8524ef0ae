"""STaR as recipe stages (pipeline/star.py) with a tiny random student served by the hf: backend: every iteration
answers, rationalizes, filters and trains from the base; the `star` model is evaluated; counts are recorded;
`rationalize: false` is the ablation; a flat training accuracy stops the loop."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from test_train_random_student import make_tiny_student, one_torch_thread, write_traces  # noqa: E402,F401

from rdistill.pipeline.recipe import load_recipe_text  # noqa: E402
from rdistill.pipeline.runner import plan_stages, run_recipe  # noqa: E402


def recipe_text(student, *, iterations=2, rationalize=True) -> str:
    return f"""\
name: star
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
star:
  iterations: {iterations}
  rationalize: {str(rationalize).lower()}
eval:
  models: [star]
  max_tokens: 16
  faithfulness_n: 0
"""


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """A tiny student that has learnt the gold solutions of the recipe's training problems by heart (the same
    generator, seed and steps), so it solves some of them when asked as it was trained: STaR has answers to keep."""
    from rdistill.train import TrainSettings, train_student

    root = tmp_path_factory.mktemp("star")
    gold = write_traces(root / "gold.jsonl", n=6, steps=(1, 2))
    untrained = make_tiny_student(root / "untrained", gold)
    settings = TrainSettings(student=str(untrained), output_dir=root / "student", lora=False, max_steps=120,
                             batch_size=6, learning_rate=1e-2, warmup_ratio=0.0, lr_scheduler="constant",
                             save_steps=1000)
    train_student(gold, settings, method="cot_sft")
    return root / "student"


def test_the_plan_has_one_stage_per_iteration_each_reading_the_last(student, tmp_path):
    loaded = load_recipe_text(recipe_text(student, iterations=3), base_dir=tmp_path)
    plan = {s.name: s for s in plan_stages(loaded)}
    assert [n for n in plan if n.startswith("star:")] == ["star:1", "star:2", "star:3"]
    assert ("star:2", "student") in plan["star:3"].reads and ("star:3", "student") in plan["eval:star:heldout"].reads
    assert "generate" in plan  # the teacher's traces are not what STaR trains on, but other methods may


def test_star_runs_its_iterations_and_records_what_each_kept(student, tmp_path, monkeypatch):
    monkeypatch.setenv("RDISTILL_CACHE", str(tmp_path / "cache"))
    loaded = load_recipe_text(recipe_text(student), base_dir=tmp_path)
    result = run_recipe(loaded, tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    for i in (1, 2):
        detail = manifest["stages"][f"star:{i}"]["detail"]
        assert detail["problems"] == 6 and detail["solved"] + detail["wrong"] == 6 and detail["solved"] > 0
        assert detail["rationalized"] == detail["wrong"]  # every wrong problem was sent to rationalization
        samples = (tmp_path / "run" / "star" / str(i) / "samples.jsonl").read_text().splitlines()
        assert len(samples) == 6
    assert manifest["stages"]["star:2"]["detail"]["sampler"].endswith("star/1/student")
    assert (tmp_path / "run" / "star" / "2" / "student" / "rdistill_train.json").is_file()
    assert "eval:star:heldout" in result.ran()


def test_without_rationalization_only_solved_answers_are_kept(student, tmp_path, monkeypatch):
    monkeypatch.setenv("RDISTILL_CACHE", str(tmp_path / "cache"))
    loaded = load_recipe_text(recipe_text(student, iterations=1, rationalize=False), base_dir=tmp_path)
    run_recipe(loaded, tmp_path / "run")
    detail = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["star:1"]["detail"]
    assert detail["rationalized"] == 0 and detail["kept_rationalized"] == 0


def test_stage_names_print_as_written(student, tmp_path, capsys):
    # rich would turn ":star:" in "eval:star:heldout" into an emoji
    from rdistill.cli import main

    recipe = tmp_path / "star.yaml"
    recipe.write_text(recipe_text(student))
    main(["run", str(recipe), "--check"])
    printed = capsys.readouterr().out
    assert "eval:star:heldout  <- data, star:2" in printed and "\u2b50" not in printed


def test_the_report_shows_each_iteration():
    from rdistill.report.data import star_iterations
    from rdistill.report.layout import star_blocks

    manifest = {"stages": {
        "star:2": {"status": "done", "detail": {"iteration": 2, "stopped": True, "student_of_iteration": 1}},
        "star:1": {"status": "done", "detail": {"iteration": 1, "problems": 10, "solved": 4, "wrong": 6,
                                                "rationales_correct": 3, "kept_solved": 4, "kept_rationalized": 2,
                                                "train_steps": 5}},
        "train:cot_sft": {"status": "done", "detail": {}}}}
    iterations = star_iterations(manifest)
    assert [it["iteration"] for it in iterations] == [1, 2]
    table = star_blocks(iterations)[-1]
    assert table.rows[0][:5] == ["1", "4/10 = 40% [17%–69%]", "3/6", "4 + 2", "5"]
    assert "converged" in table.rows[1][-1]
