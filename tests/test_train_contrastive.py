"""The pair methods (contrastive, dpo) with a tiny random student: the contrastive loss against a hand computation,
both methods end to end (the pair margin grows, the student folder reloads), and the margin measurement."""

from __future__ import annotations

import json
import math
import shutil

import pytest

torch = pytest.importorskip("torch")

from test_train_pairs import write_pair_traces  # noqa: E402
from test_train_random_student import make_tiny_student, one_torch_thread  # noqa: E402,F401  (fixture)

from rdistill.train import TrainSettings, load_prompt_format, train_student  # noqa: E402
from rdistill.train.pair_margin import measure_pair_margin, student_pair_margin  # noqa: E402
from rdistill.train.pairs import load_pairs  # noqa: E402


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    """(pair trace file, tiny student folder)."""
    root = tmp_path_factory.mktemp("pair-files")
    traces = write_pair_traces(root / "pairs.jsonl", n=6)
    return traces, make_tiny_student(root / "student", traces)


def settings(student, out, **overrides) -> TrainSettings:
    return TrainSettings(**{"student": str(student), "output_dir": out, "epochs": 1, "batch_size": 4,
                            "max_steps": 8, "save_steps": 50, "learning_rate": 1e-2, "warmup_ratio": 0.0,
                            "lr_scheduler": "constant", **overrides})


@pytest.mark.parametrize("normalize", [False, True])
def test_contrastive_loss_matches_a_hand_computation_on_a_fixed_batch(pair_files, tmp_path, normalize):
    from rdistill.train import core
    from rdistill.train.contrastive import ContrastiveOptions, PairCollator, build_trainer
    from rdistill.train.pair_core import tokenize_pairs

    traces, student = pair_files
    run = settings(student, tmp_path / "out", lora=False)
    model, tokenizer = core.load_student(run)
    pairs = load_pairs(traces).pairs[:3]
    tokenized = tokenize_pairs(tokenizer, pairs, max_length=1024)
    options = ContrastiveOptions(margin=2.0, weight=0.5, normalize=normalize)
    trainer = build_trainer(model, tokenizer, tokenized, run, options, tmp_path / "ckpt")
    batch = PairCollator(tokenizer.pad_token_id)(tokenized.rows)

    model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch)).item()
        # By hand: plain logits, each row's reply tokens, the formula of the method's docstring.
        logps, lengths = [], []
        for ids, labels in zip(batch["input_ids"], batch["labels"]):
            logits = model(input_ids=ids[None]).logits[0].log_softmax(-1)
            positions = [t for t in range(1, len(ids)) if labels[t] != -100]
            logps.append(sum(logits[t - 1, ids[t]].item() for t in positions))
            lengths.append(len(positions))
    n = len(pairs)
    seq = [lp / k for lp, k in zip(logps, lengths)] if normalize else logps
    lm = -sum(logps[:n]) / sum(lengths[:n])
    hinge = sum(max(0.0, 2.0 - (seq[i] - seq[n + i])) for i in range(n)) / n
    assert loss == pytest.approx(lm + 0.5 * hinge, rel=1e-4)
    assert hinge > 0  # the untrained student is inside the margin: the test exercises the hinge


def train(pair_files, tmp_path_factory, method, options=None, **overrides):
    traces, student = pair_files
    out = tmp_path_factory.mktemp(method) / "student"
    events = []
    result = train_student(traces, settings(student, out, **overrides), method=method, options=options,
                           on_progress=events.append)
    return result, events


@pytest.fixture(scope="module")
def trained(pair_files, tmp_path_factory):
    return {
        "contrastive": train(pair_files, tmp_path_factory, "contrastive", {"margin": 5.0},
                             system_prompt="Think step by step."),
        "dpo": train(pair_files, tmp_path_factory, "dpo", {"beta": 0.5}),
        "dpo_full": train(pair_files, tmp_path_factory, "dpo", {"beta": 0.5}, lora=False, learning_rate=1e-3),
    }


@pytest.mark.parametrize("name", ["contrastive", "dpo", "dpo_full"])
def test_pair_methods_widen_the_margin_and_write_a_student_that_reloads(pair_files, trained, name):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    traces, student = pair_files
    result, events = trained[name]
    out = result.output_dir
    record = json.loads((out / "rdistill_train.json").read_text())
    assert record["method"] == name.removesuffix("_full") and record["pairs"]["trained"] == 10
    assert record["data"]["examples"] == 10 and record["stages"][0]["steps"] == result.steps == 8
    assert (out / "adapter" / "adapter_config.json").exists() == record["hyperparameters"]["lora"]
    assert f"`{record['method']}`" in (out / "README.md").read_text()

    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, 9)) and [e.step for e in events] == list(range(1, 9))
    assert all(m["tokens_per_s"] > 0 and "logp_margin" in m for m in metrics)

    # The margin on the training pairs, asked the way the student was trained, before and after.
    prompt = load_prompt_format(out)
    before = student_pair_margin(student, traces, prompt=prompt)
    after = student_pair_margin(out, traces)
    assert after.pairs == before.pairs == 10
    assert after.mean_margin > before.mean_margin + 1.0 and after.positive_share > before.positive_share

    if record["hyperparameters"]["lora"]:  # the adapter over its base, through peft alone
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(out / "adapter")
    else:
        model = AutoModelForCausalLM.from_pretrained(out)  # a plain model
    tokenizer = AutoTokenizer.from_pretrained(out)
    again = measure_pair_margin(model, tokenizer, load_pairs(traces, prompt).pairs)
    assert again.mean_margin == pytest.approx(after.mean_margin, abs=1e-3)


def test_dpo_starts_at_its_reference_and_moves_away_from_it(trained):
    for name in ("dpo", "dpo_full"):  # the adapter-disabled base, and a frozen copy of the untrained student
        result, _ = trained[name]
        metrics = [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()]
        assert metrics[0]["loss"] == pytest.approx(math.log(2), abs=1e-4) and metrics[0]["reward_margin"] == 0
        assert metrics[-1]["reward_margin"] > 0 and metrics[-1]["reward_accuracy"] > 0.5


@pytest.mark.parametrize("method, lora", [("contrastive", True), ("dpo", False)])
def test_a_resumed_pair_run_ends_with_the_weights_of_an_uninterrupted_one(pair_files, tmp_path, method, lora):
    from safetensors.torch import load_file

    traces, student = pair_files
    runs = {name: settings(student, tmp_path / name, max_steps=4, save_steps=2, lora=lora) for name in "ab"}
    for run in runs.values():
        train_student(traces, run, method=method)
    # Crash b after its step-2 checkpoint: the later checkpoint and the saved student never got written.
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "checkpoint-4")
    weights = "adapter/adapter_model.safetensors" if lora else "model.safetensors"  # a LoRA student is its adapter
    for name in ("rdistill_train.json", weights):
        (tmp_path / "b" / name).unlink()
    runs["b"].resume = True
    train_student(traces, runs["b"], method=method)
    a, b = (load_file(tmp_path / name / weights) for name in "ab")
    assert all(torch.equal(a[key], b[key]) for key in a)
    losses = [[json.loads(line)["loss"] for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
              for name in "ab"]
    assert losses[0] == losses[1] and len(losses[0]) == 4


def test_contrastive_records_its_options_and_the_prompt_cot_sft_would_use(trained):
    result, _ = trained["contrastive"]
    record = result.run
    assert record["method_options"] == {"margin": 5.0, "weight": 1.0, "normalize": False}
    assert record["prompt"] == {"system_prompt": "Think step by step.", "user_prefix": ""}
    assert record["pairs"]["rejected_by_origin"] == {"rewrite": 6, "mined": 4}
    metrics = [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"lm_loss", "margin_loss", "logp_chosen", "logp_rejected", "pair_accuracy"} <= set(metrics[0])


def test_pair_options_are_checked_before_anything_loads(pair_files, tmp_path):
    from rdistill.errors import RdistillError

    traces, student = pair_files
    with pytest.raises(RdistillError, match="beta must be a positive number"):
        train_student(traces, settings(student, tmp_path / "o"), method="dpo", options={"beta": "0"})
    with pytest.raises(RdistillError, match="option of method contrastive"):
        train_student(traces, settings(student, tmp_path / "o"), method="contrastive", options={"beta": "1"})
