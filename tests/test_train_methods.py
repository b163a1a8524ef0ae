"""Every method end to end on a handful of real traces with a tiny random student: what lands in OUT."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from test_train_random_student import one_torch_thread, train_files  # noqa: E402,F401  (fixtures)

from rdistill.train import TrainSettings, load_prompt_format, train_student  # noqa: E402


def run(train_files, tmp_path_factory, method, options=None, **overrides):
    traces, student = train_files
    out = tmp_path_factory.mktemp(method) / "student"
    events = []
    settings = TrainSettings(**{"student": str(student), "output_dir": out, "epochs": 1, "batch_size": 4,
                                "save_steps": 50, "learning_rate": 1e-2, **overrides})
    result = train_student(traces, settings, method=method, options=options, on_progress=events.append)
    return result, events


@pytest.fixture(scope="module")
def trained(train_files, tmp_path_factory):
    """One small run per method (LoRA unless noted), shared by the tests below."""
    return {
        "cot_sft": run(train_files, tmp_path_factory, "cot_sft", system_prompt="Think step by step.",
                       save_merged=True),
        "answer_only": run(train_files, tmp_path_factory, "answer_only", lora=False),
        "step_by_step": run(train_files, tmp_path_factory, "step_by_step", {"next_step": True}, packing=True,
                            max_length=512),
        "curriculum": run(train_files, tmp_path_factory, "curriculum", {"stages": 3, "stage_epochs": "1,1,2"}),
    }


def metrics_of(result):
    return [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", ["cot_sft", "answer_only", "step_by_step", "curriculum"])
def test_each_method_writes_a_student_that_loads_and_runs(trained, method):
    # A LoRA student without a merged copy loads through rdistill.models as one model; the merged copy
    # (save_merged) loads with plain transformers (test_lora_run_saves_the_adapter_and_a_merged_model_that_matches_it).
    from rdistill.models import load_causal_lm

    result, _ = trained[method]
    model, tokenizer = load_causal_lm(str(result.output_dir))
    messages = load_prompt_format(result.output_dir).messages("Ann has 4 pens and buys 3 more. How many now?")
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    generated = model.generate(**prompt, max_new_tokens=6, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]
    assert not (result.output_dir / "adapter_config.json").exists()  # a plain model, not an adapter
    run_record = json.loads((result.output_dir / "rdistill_train.json").read_text())
    assert run_record["method"] == method and run_record["data"]["traces"] == 12


def test_metrics_have_loss_learning_rate_and_tokens_per_second_for_every_step(trained):
    for method, (result, events) in trained.items():
        records = metrics_of(result)
        assert [r["step"] for r in records] == list(range(1, result.steps + 1)), method
        for r in records:
            assert r["loss"] > 0 and r["learning_rate"] >= 0 and r["tokens_per_s"] > 0 and r["epoch"] > 0
        assert [e.step for e in events] == list(range(1, result.steps + 1))
    first, last = metrics_of(trained["answer_only"][0])[0], metrics_of(trained["answer_only"][0])[-1]
    assert last["loss"] < first["loss"]  # full fine-tuning at lr 1e-2 learns the one-sentence answers


def test_model_card_records_teacher_data_method_hyperparameters_and_metrics(trained):
    result, _ = trained["cot_sft"]
    card = (result.output_dir / "README.md").read_text()
    record = json.loads((result.output_dir / "rdistill_train.json").read_text())
    for expected in ["gold-solution (12 traces)", record["data"]["sha256"], record["data"]["path"], "Traces: 12",
                     "`cot_sft`", "| learning_rate | 0.01 |", "| lora_r | 16 |", "| batch_size | 4 |",
                     f"| final_loss | {record['metrics']['final_loss']:.6g} |", "| tokens_per_s |",
                     "System prompt: Think step by step.", "<!-- rdistill:eval:start -->"]:
        assert expected in card, expected
    assert record["metrics"]["final_loss"] == metrics_of(result)[-1]["loss"]
    assert record["prompt"] == {"system_prompt": "Think step by step.", "user_prefix": ""}


def test_lora_run_saves_the_adapter_and_a_merged_model_that_matches_it(trained):
    from transformers import AutoModelForCausalLM

    from rdistill.models import load_causal_lm

    result, _ = trained["cot_sft"]
    adapter = result.output_dir / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == json.loads(
        (result.output_dir / "rdistill_train.json").read_text())["student"]
    assert {name.rsplit(".", 1)[-1] for name in config["target_modules"]} >= {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                             "down_proj"}
    merged = AutoModelForCausalLM.from_pretrained(result.output_dir).eval()
    from_adapter, _ = load_causal_lm(str(adapter))  # base + adapter through peft, merged by rdistill.models.loading
    base = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"]).eval()
    ids = torch.tensor([[1, 30, 31, 32, 33, 34]])
    with torch.no_grad():
        merged_logits, adapter_logits, base_logits = (m(ids).logits for m in (merged, from_adapter, base))
    assert torch.allclose(merged_logits, adapter_logits, atol=1e-4)
    assert not torch.allclose(merged_logits, base_logits, atol=1e-4)  # training moved the weights


def test_by_default_a_lora_student_is_its_adapter_and_loads_as_one_model(trained):
    from rdistill.models import load_causal_lm

    result, _ = trained["curriculum"]  # LoRA, save_merged left at its default
    assert not (result.output_dir / "model.safetensors").exists() and not (result.output_dir / "config.json").exists()
    assert (result.output_dir / "adapter" / "adapter_model.safetensors").is_file()
    record = json.loads((result.output_dir / "rdistill_train.json").read_text())
    assert record["outputs"] == {"model": None, "adapter": "adapter"}
    from_folder, _ = load_causal_lm(str(result.output_dir))
    from_adapter, _ = load_causal_lm(str(result.output_dir / "adapter"))
    ids = torch.tensor([[1, 30, 31, 32, 33, 34]])
    with torch.no_grad():
        assert torch.equal(from_folder(ids).logits, from_adapter(ids).logits)


def test_step_by_step_records_the_label_prefix_and_packs(trained):
    result, _ = trained["step_by_step"]
    record = json.loads((result.output_dir / "rdistill_train.json").read_text())
    assert record["prompt"]["user_prefix"] == "[label] "
    assert record["prompt"]["tasks"] == {"label": "[label] ", "rationale": "[rationale] "}
    assert record["method_options"] == {"rationale_weight": 1.0, "next_step": True}
    assert record["hyperparameters"]["packing"] is True
    assert record["data"]["examples"] > 2 * 12  # label + rationale per trace, plus one per step
    # Packed rows hold several examples: fewer optimizer steps than examples / batch size.
    assert result.steps < record["data"]["examples"] / 4


def test_curriculum_trains_its_stages_in_order_each_with_its_epochs(trained):
    result, events = trained["curriculum"]
    record = json.loads((result.output_dir / "rdistill_train.json").read_text())
    stages = record["stages"]
    assert [s["name"].split(" (")[0] for s in stages] == ["stage 1", "stage 2", "stage 3"]
    assert [s["epochs"] for s in stages] == [1.0, 1.0, 2.0]
    levels = [tuple(map(int, s["name"].split("steps ")[1].rstrip(")").split("-"))) for s in stages]
    assert all(a[1] < b[0] for a, b in zip(levels, levels[1:]))  # easy to hard, no overlap
    seen = [r["stage"] for r in metrics_of(result)]
    assert seen == sorted(seen) and set(seen) == {1, 2, 3}
    assert sum(s["steps"] for s in stages) == result.steps == len(seen)
    assert [e.stage for e in events] == seen


def test_step_by_step_lambda_changes_what_is_learnt(train_files, tmp_path_factory):
    from safetensors.torch import load_file

    common = dict(lora=False, max_steps=2, epochs=1)
    low, _ = run(train_files, tmp_path_factory, "step_by_step", {"rationale_weight": 0.1}, **common)
    high, _ = run(train_files, tmp_path_factory, "step_by_step", {"rationale_weight": 10.0}, **common)
    assert metrics_of(low)[0]["loss"] != pytest.approx(metrics_of(high)[0]["loss"], rel=1e-4)
    low_weights = load_file(low.output_dir / "model.safetensors")
    high_weights = load_file(high.output_dir / "model.safetensors")
    differences = [(low_weights[k] - high_weights[k]).abs().max().item() for k in low_weights]
    assert max(differences) > 1e-4
    same, _ = run(train_files, tmp_path_factory, "step_by_step", {"rationale_weight": 0.1}, **common)
    same_weights = load_file(same.output_dir / "model.safetensors")
    assert all(torch.equal(low_weights[k], same_weights[k]) for k in low_weights)  # the seed fixes the rest


def test_training_goes_on_from_a_saved_adapter_and_keeps_its_base(trained, tmp_path):
    from rdistill.models import load_causal_lm

    first, _ = trained["cot_sft"]
    base = json.loads((first.output_dir / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"]
    traces = json.loads((first.output_dir / "rdistill_train.json").read_text())["data"]["path"]
    settings = TrainSettings(student=str(first.output_dir / "adapter"), output_dir=tmp_path / "more", max_steps=3,
                             batch_size=4, learning_rate=1e-2)
    result = train_student(traces, settings, method="answer_only")
    assert json.loads((result.output_dir / "adapter" / "adapter_config.json").read_text())[
        "base_model_name_or_path"] == base
    before, after = (load_causal_lm(str(d))[0].model.layers[0].self_attn.q_proj.weight
                     for d in (first.output_dir, result.output_dir))
    assert not torch.equal(before, after)  # the adapter went on learning from where it was
