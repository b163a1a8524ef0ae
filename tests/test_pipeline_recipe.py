"""Recipes: every shipped one validates; errors name the key, file and line and suggest the right key; overrides are
typed and validated like the file; paths resolve where the recipe says they do."""

from __future__ import annotations

from pathlib import Path

import pytest

from rdistill.data import BUNDLED_DATA

from conftest import REPO, SHARED_DATA
from rdistill.errors import InputError
from rdistill.pipeline.recipe import (RecipeError, load_quickstart, load_recipe, load_recipe_text, parse_override,
                                      quickstart_path)
from rdistill.pipeline.runner import plan_stages

RECIPES = sorted((REPO / "recipes").glob("*.yaml"))

MINIMAL = """\
name: tiny
teacher:
  model: offline:smollm2-135m-instruct
student:
  model: offline:smollm2-135m-instruct
data:
  train:
    - synth: arithmetic
      n: 4
  eval:
    heldout:
      synth: arithmetic
      n: 2
train:
  epochs: 1
  methods:
    cot_sft:
      lr: 1.0e-3
"""


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def issues_of(excinfo) -> list[tuple[str, str | None, int | None, str | None]]:
    return excinfo.value.issues


def test_recipes_folder_ships_the_four_recipes():
    assert {p.name for p in RECIPES} >= {"quickstart.yaml", "gsm8k.yaml", "gsm8k-multigpu.yaml",
                                         "gsm8k-anthropic.yaml"}


def finished_run(folder, students=("answer_only", "cot_sft")):
    """The files that make a folder a finished run with trained students, for recipes that reuse one."""
    (folder / "data").mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    (folder / "data" / "train.jsonl").write_text('{"id": "t1", "question": "What is 2 + 2?", "answer": "4"}\n')
    for name in students:
        (folder / "train" / name).mkdir(parents=True)
        (folder / "train" / name / "rdistill_train.json").write_text('{"hyperparameters": {"lora": true}}')
    return folder


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_loads_validates_and_plans(path, tmp_path):
    reuses = "\nreuse:" in path.read_text()
    overrides = [f"reuse.run={finished_run(tmp_path / 'run')}"] if reuses else []
    loaded = load_recipe(path, overrides, check_files=SHARED_DATA.is_dir())  # benchmark copies: where they exist
    plan = plan_stages(loaded)
    names = [s.name for s in plan]
    assert names[0] == "data" and names[-1] == "report"
    if reuses:  # evaluation only: the reused run's students, the teacher and the untrained student
        assert not any(n.split(":")[0] in ("generate", "filter", "train", "star", "targeted") for n in names)
    else:
        assert names[1:3] == ["generate", "filter"]
        assert any(n.startswith(("train:", "star:")) for n in names)
    evaluated = {n.split(":")[1] for n in names if n.startswith("eval:")}
    assert evaluated == set(loaded.recipe.eval_models()) and evaluated


def test_embedded_quickstart_is_the_shipped_recipe_file_byte_for_byte():
    assert quickstart_path().read_bytes() == (REPO / "recipes" / "quickstart.yaml").read_bytes()


def test_quickstart_asks_for_what_the_issue_describes(monkeypatch):
    monkeypatch.chdir(REPO)
    recipe = load_quickstart(check_files=False).recipe
    assert recipe.teacher.model == "llamaserver:offline:qwen2.5-coder-1.5b-instruct"
    assert recipe.student.model == "offline:qwen2.5-coder-0.5b-instruct"
    # the untrained and the trained students run in the same runtime (llama.cpp, same GGUF base)
    assert recipe.student.baseline_model == "llamaserver:offline:qwen2.5-coder-0.5b-instruct"
    assert recipe.student.trained_model == "llamaserver:{folder}"
    assert set(recipe.train.methods) == {"answer_only", "cot_sft"}
    assert recipe.train.lora and recipe.train.lora_r == 16 and recipe.train.lora_alpha == 32
    assert recipe.generate.strategy == "domain:math" and recipe.generate.samples == 1
    assert recipe.generate.temperature == 0 and recipe.eval.temperature == 0
    assert recipe.eval_models() == ["teacher", "baseline", "answer_only", "cot_sft"]
    train_steps = max(int(s) for s in recipe.data.train[0].steps.split("-"))
    harder = recipe.data.eval["harder"]
    # more steps than any training trace: the synth problems have at most 4, and the filter drops longer traces
    # (of the GSM8K problems mixed in)
    assert recipe.filter.max_steps is not None and recipe.filter.max_steps <= train_steps
    assert min(int(s) for s in harder.steps.split("-")) > train_steps
    transfer = recipe.data.eval["transfer"]
    assert transfer.bench in ("multiarith", "svamp") and transfer.limit >= 100
    assert Path(transfer.path) == BUNDLED_DATA / "multiarith"  # ships with the package: runs from any folder


def test_unknown_key_names_the_key_file_line_and_the_right_key(tmp_path):
    path = write(tmp_path, MINIMAL.replace("      lr: 1.0e-3", "      lora_rank: 8"))
    with pytest.raises(RecipeError) as excinfo:
        load_recipe(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}:18: field 'train.methods.cot_sft.lora_rank': unknown key 'lora_rank'.")
    assert "Did you mean 'lora_r'" in message


def test_unknown_top_level_key_and_every_other_problem_are_reported_together(tmp_path):
    text = MINIMAL.replace("teacher:\n", "teachr:\n").replace("      n: 2\n", "      n: 2\n      stepz: 3\n")
    with pytest.raises(RecipeError) as excinfo:
        load_recipe(write(tmp_path, text))
    found = {(fld, line): message for message, _, line, fld in issues_of(excinfo)}
    assert "Did you mean 'teacher'" in found[("teachr", 2)]
    assert "Did you mean 'steps'" in found[("data.eval.heldout.stepz", 14)]
    assert any(fld == "teacher" and "required" in m for m, _, _, fld in issues_of(excinfo))


def test_names_the_stages_would_refuse_are_caught_at_load_time_with_their_lines(tmp_path):
    text = (MINIMAL.replace("synth: arithmetic\n      n: 4", "synth: arithmetc\n      n: 4")
            .replace("    cot_sft:\n", "    cot_sft:\n      method: cot_sfft\n")
            + "generate:\n  strategy: domain:maths\neval:\n  models: [teacher, cot]\n  sets: [heldot]\n")
    with pytest.raises(RecipeError) as excinfo:
        load_recipe(write(tmp_path, text))
    by_field = {fld: (line, m) for m, _, line, fld in issues_of(excinfo)}
    assert by_field["data.train.0.synth"][0] == 8 and "Did you mean 'arithmetic'" in by_field["data.train.0.synth"][1]
    assert by_field["train.methods.cot_sft.method"][0] == 18
    assert "Did you mean 'cot_sft'" in by_field["train.methods.cot_sft.method"][1]
    assert "Did you mean 'math'" in by_field["generate.strategy"][1]
    assert "Did you mean 'cot_sft'" in by_field["eval.models.1"][1]
    assert "Did you mean 'heldout'" in by_field["eval.sets.0"][1]


def test_eval_tasks_must_be_tasks_the_method_teaches(tmp_path):
    text = MINIMAL.replace("    cot_sft:\n      lr: 1.0e-3\n", "    cot_sft:\n      lr: 1.0e-3\n      eval_tasks: [rationale]\n"
                           "    sbs:\n      method: step_by_step\n      eval_tasks: [rationel]\n")
    with pytest.raises(RecipeError) as excinfo:
        load_recipe(write(tmp_path, text))
    by_field = {fld: m for m, _, _, fld in issues_of(excinfo)}
    assert "a cot_sft student has no task 'rationale' (it trains a single task)" in by_field[
        "train.methods.cot_sft.eval_tasks"]
    assert "no task 'rationel' (its tasks: label, rationale)" in by_field["train.methods.sbs.eval_tasks"]
    fixed = text.replace("      lr: 1.0e-3\n      eval_tasks: [rationale]\n", "      lr: 1.0e-3\n").replace(
        "rationel", "rationale")
    assert load_recipe(write(tmp_path, fixed)).recipe.train.methods["sbs"].eval_tasks == ["rationale"]


def test_bad_values_and_yaml_errors_are_located(tmp_path):
    with pytest.raises(RecipeError) as excinfo:
        load_recipe(write(tmp_path, MINIMAL.replace("      n: 2", "      n: zero")))
    assert str(excinfo.value).startswith(f"{tmp_path / 'recipe.yaml'}:13: field 'data.eval.heldout.n':")
    with pytest.raises(InputError, match=r"recipe.yaml:6: invalid YAML: expected .,. or .\]."):
        load_recipe(write(tmp_path, MINIMAL.replace("student:\n", "student: [\n")))
    with pytest.raises(InputError, match=r"recipe.yaml:4: field 'teacher': key 'teacher' appears twice \(first on line 2\)"):
        load_recipe(write(tmp_path, MINIMAL.replace("student:\n", "teacher:\n")))
    with pytest.raises(InputError, match="no such recipe file"):
        load_recipe(tmp_path / "missing.yaml")


def test_training_settings_errors_point_at_the_key_that_set_them(tmp_path):
    with pytest.raises(RecipeError) as excinfo:
        load_recipe(write(tmp_path, MINIMAL), overrides=["train.batch_size=0"])
    assert str(excinfo.value) == ("override 'train.batch_size=0': field 'train.batch_size': batch_size must be at "
                                  "least 1, got 0")
    with pytest.raises(RecipeError, match=r"recipe.yaml:18: field 'train.methods.cot_sft.lr': lr must be a positive"):
        load_recipe(write(tmp_path, MINIMAL.replace("lr: 1.0e-3", "lr: -1.0")))


def test_overrides_are_parsed_as_yaml_and_validated_like_the_file(tmp_path):
    loaded = load_recipe(write(tmp_path, MINIMAL), overrides=[
        "train.epochs=2.5", "train.methods.cot_sft.packing=true", "eval.models=[teacher, cot_sft]",
        "data.train.0.n=7", "data.eval.more.synth=coin_flip", "data.eval.more.n=3", "generate.max_tokens=64",
        "train.methods.answer_only=", "student.model=hf:offline:smollm2-135m-instruct"])
    r = loaded.recipe
    assert r.train.epochs == 2.5 and r.train.methods["cot_sft"].packing is True
    assert r.train.settings_for("cot_sft")["lr"] == 1e-3 and r.train.settings_for("answer_only")["lr"] is None
    assert r.eval_models() == ["teacher", "cot_sft"]
    assert r.data.train[0].n == 7 and r.data.eval["more"].synth == "coin_flip"
    assert r.generate.max_tokens == 64 and set(r.train.methods) == {"cot_sft", "answer_only"}
    assert loaded.overrides[0] == "train.epochs=2.5"


def test_override_mistakes_name_the_override(tmp_path):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(RecipeError) as excinfo:
        load_recipe(path, overrides=["train.methods.cot_sft.lora_rank=8"])
    assert str(excinfo.value).startswith("override 'train.methods.cot_sft.lora_rank=8': field "
                                         "'train.methods.cot_sft.lora_rank': unknown key 'lora_rank'. Did you mean")
    with pytest.raises(RecipeError, match=r"override 'data.heldout.n=3'.*data.eval.heldout"):
        load_recipe(path, overrides=["data.heldout.n=3"])  # eval sets live under data.eval: the message says so
    with pytest.raises(RecipeError, match=r"override 'generate.max_tokens=many': field 'generate.max_tokens'"):
        load_recipe(path, overrides=["generate.max_tokens=many"])
    with pytest.raises(InputError, match="expected KEY.PATH=VALUE"):
        parse_override("train.epochs")
    with pytest.raises(InputError, match="index it with 0..0"):
        load_recipe(path, overrides=["data.train.3.n=1"])
    with pytest.raises(InputError, match="not a section"):
        load_recipe(path, overrides=["name.x=1"])


def test_paths_resolve_from_the_recipe_folder_the_override_cwd_and_cwd_token(tmp_path, monkeypatch):
    recipe_dir = tmp_path / "recipes"
    recipe_dir.mkdir()
    (recipe_dir / "problems.jsonl").write_text('{"id": "p1", "question": "1 + 1?", "answer": "2"}\n')
    (tmp_path / "other.jsonl").write_text('{"id": "p2", "question": "2 + 2?", "answer": "4"}\n')
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "cwd.jsonl").write_text('{"id": "p3", "question": "3 + 3?", "answer": "6"}\n')
    text = MINIMAL.replace("  eval:\n", "    - file: problems.jsonl\n    - file: '{cwd}/cwd.jsonl'\n  eval:\n")
    path = write(recipe_dir, text)
    monkeypatch.chdir(tmp_path / "work")
    loaded = load_recipe(path, overrides=["data.eval.extra.file=../other.jsonl"])
    files = [s.file for s in loaded.recipe.data.train if s.file]
    assert files == [str(recipe_dir / "problems.jsonl"), str(tmp_path / "work" / "cwd.jsonl")]
    assert loaded.recipe.data.eval["extra"].file == str(tmp_path / "other.jsonl")
    with pytest.raises(RecipeError, match=r"field 'data.eval.extra.file': no such file"):
        load_recipe(path, overrides=["data.eval.extra.file=other.jsonl"])


def test_embedded_quickstart_loads_from_an_empty_folder_and_overrides_start_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loaded = load_quickstart()  # no shared/ anywhere above tmp_path: the benchmark subsets ship with the package
    assert loaded.recipe.data.eval["transfer"].path == str(BUNDLED_DATA / "multiarith")
    assert loaded.recipe.data.train[1].path == str(BUNDLED_DATA / "gsm8k")
    with pytest.raises(RecipeError) as excinfo:
        load_quickstart(["data.eval.transfer.path=missing"])
    message = str(excinfo.value)
    assert "override" in message and "field 'data.eval.transfer.path'" in message and str(tmp_path) in message
    (tmp_path / "copy").mkdir()
    loaded = load_quickstart(["data.eval.transfer.path=copy", "data.train.1.path=copy"])
    assert loaded.recipe.data.eval["transfer"].path == str(tmp_path / "copy") and loaded.embedded


def test_bundled_subsets_are_the_first_records_of_the_upstream_files_with_their_licenses(shared_data):
    import hashlib
    import json

    for folder, files, license_name in [("gsm8k", ["train.jsonl", "test.jsonl"], "LICENSE"),
                                        ("multiarith", ["MultiArith.json"], "LICENSE.LLM-Adapters")]:
        source = (BUNDLED_DATA / folder / "SOURCE.md").read_text(encoding="utf-8")
        assert (BUNDLED_DATA / folder / license_name).read_bytes() == (shared_data / folder / license_name).read_bytes()
        for name in files:
            upstream = shared_data / folder / name
            assert hashlib.sha256(upstream.read_bytes()).hexdigest() in source
            if name.endswith(".jsonl"):
                kept = (BUNDLED_DATA / folder / name).read_bytes().splitlines()
                assert kept == upstream.read_bytes().splitlines()[:len(kept)] and len(kept) >= 100
            else:
                kept = json.loads((BUNDLED_DATA / folder / name).read_text(encoding="utf-8"))
                assert kept == json.loads(upstream.read_text(encoding="utf-8"))[:len(kept)] and len(kept) >= 100


def test_a_limit_beyond_a_bundled_subset_is_an_error_not_fewer_problems():
    from rdistill.errors import InputError
    from rdistill.pipeline.recipe import ProblemSource
    from rdistill.pipeline.stages import load_source

    source = ProblemSource(bench="multiarith", path=str(BUNDLED_DATA / "multiarith"), limit=500)
    with pytest.raises(InputError, match="bundled copy of multiarith holds 200 problems.*remove path to read the hub"):
        load_source(source, default_split="test")
    assert len(load_source(ProblemSource(bench="multiarith", path=str(BUNDLED_DATA / "multiarith"), limit=100),
                           default_split="test")) == 100


def test_a_source_takes_only_its_own_keys(tmp_path):
    with pytest.raises(RecipeError, match="steps do(es)? not apply to a bench source"):
        load_recipe_text(MINIMAL.replace("synth: arithmetic\n      n: 2", "bench: gsm8k\n      steps: 2"),
                         base_dir=tmp_path, check_files=False)
    with pytest.raises(RecipeError, match="exactly one of synth"):
        load_recipe_text(MINIMAL.replace("synth: arithmetic\n      n: 2", "n: 2"), base_dir=tmp_path)


def test_cli_run_with_a_bad_recipe_prints_one_line_exits_2_and_writes_nothing(cli, tmp_path):
    path = write(tmp_path, MINIMAL.replace("      lr: 1.0e-3", "      lora_rank: 8"))
    proc = cli("run", str(path), "--run-dir", str(tmp_path / "run"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "recipe.yaml:18: field 'train.methods.cot_sft.lora_rank'" in lines[0]
    assert "Did you mean 'lora_r'" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()
    proc = cli("run", str(write(tmp_path, MINIMAL, "ok.yaml")), "--force", "trian", "--run-dir", str(tmp_path / "run"))
    assert proc.returncode == 2 and "unknown stage 'trian'" in proc.stderr and "Did you mean" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_cli_check_lists_the_stages_without_writing(cli, tmp_path):
    path = write(tmp_path, MINIMAL)
    proc = cli("run", str(path), "train.methods.answer_only=", "--check", "--run-dir", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    for stage in ("data", "generate", "filter", "eval:teacher:heldout", "eval:baseline:heldout", "train:cot_sft",
                  "train:answer_only", "eval:cot_sft:heldout", "report"):
        assert f"  {stage}  <-" in proc.stdout
    assert not (tmp_path / "run").exists()
