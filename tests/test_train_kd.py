"""Logit KD (train method kd) with tiny random models: the two KL terms against hand computations, traces that carry
a real teacher's top-k (generated through the hf: backend with --logprobs), training from them (the distillation
term falls), the dense white-box teacher, and the refusals (no stored logprobs, another vocabulary, packing)."""

from __future__ import annotations

import json
import math
import shutil

import pytest

torch = pytest.importorskip("torch")

from test_train_random_student import make_tiny_student, one_torch_thread, write_traces  # noqa: E402,F401

from rdistill.errors import RdistillError  # noqa: E402
from rdistill.train import TrainSettings, train_student  # noqa: E402
from rdistill.train.kd import dense_kl, topk_kl  # noqa: E402

K = 5


def test_topk_kl_renormalises_both_sides_over_the_teachers_k_tokens():
    logits = torch.tensor([[0.5, 1.0, 0.0, -1.0, 3.0]])
    top_ids = torch.tensor([[4, 0, -1]])  # two known alternatives, one empty slot
    top_logprobs = torch.tensor([[-0.5, -1.5, 0.0]])
    T = 2.0
    # By hand: the teacher over {4, 0} at temperature T, the student's softened probabilities of {4, 0} renormalised.
    t = [math.exp(-0.5 / T), math.exp(-1.5 / T)]
    p = [x / sum(t) for x in t]
    s = [math.exp(3.0 / T), math.exp(0.5 / T)]
    q = [x / sum(s) for x in s]
    expected = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    assert expected > 0.05
    assert topk_kl(logits, top_ids, top_logprobs, T).item() == pytest.approx(expected, rel=1e-5)
    # A student that already matches the teacher on those tokens (whatever it does elsewhere) has nothing to learn.
    matching = torch.tensor([[-1.5, 7.0, 7.0, 7.0, -0.5]])
    assert topk_kl(matching, top_ids, top_logprobs, 1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_dense_kl_is_torchs_kl_divergence_of_the_softened_distributions():
    torch.manual_seed(0)
    student, teacher = torch.randn(3, 11), torch.randn(3, 13)  # a teacher head with unused extra rows
    T = 1.5
    expected = torch.nn.functional.kl_div((student / T).log_softmax(-1), (teacher[:, :11] / T).log_softmax(-1),
                                          log_target=True, reduction="none").sum(-1)
    assert torch.allclose(dense_kl(student, teacher, T), expected, atol=1e-6)


@pytest.fixture(scope="module")
def kd_files(tmp_path_factory):
    """A tiny student, a tiny teacher with the same tokenizer and other weights, and traces the teacher wrote through
    the real generation path (hf: backend, greedy, --logprobs K)."""
    from rdistill.generate import GenerationOptions, generate_traces
    from rdistill.jsonl import read_records
    from rdistill.records import Problem
    from rdistill.teachers import make_teacher

    root = tmp_path_factory.mktemp("kd")
    gold = write_traces(root / "gold.jsonl", n=8)
    student = make_tiny_student(root / "student", gold)
    teacher = root / "teacher"
    shutil.copytree(student, teacher)
    from safetensors.torch import load_file, save_file

    weights = load_file(str(teacher / "model.safetensors"))
    generator = torch.Generator().manual_seed(1)
    # Other weights, and larger ones: a peaked teacher, far from the near-uniform random student.
    save_file({k: torch.randn(v.shape, generator=generator) * 1.5 for k, v in weights.items()},
              str(teacher / "model.safetensors"))
    problems = list(read_records(gold, Problem))
    client = make_teacher(f"hf:{teacher}", cache=False)
    traces = root / "kd-traces.jsonl"
    summary = generate_traces(problems, client, "cot", GenerationOptions(max_tokens=24, logprobs=K), traces)
    assert summary.traces_written == len(problems) and summary.failures == 0
    return {"root": root, "student": student, "teacher": teacher, "traces": traces, "gold": gold}


def settings(student, out, **overrides) -> TrainSettings:
    return TrainSettings(**{"student": str(student), "output_dir": out, "epochs": 1, "batch_size": 4,
                            "max_steps": 10, "save_steps": 50, "learning_rate": 1e-2, "warmup_ratio": 0.0,
                            "lr_scheduler": "constant", "lora": False, **overrides})


def test_generated_traces_carry_the_teachers_ids_and_top_k(kd_files):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(kd_files["teacher"])
    for line in kd_files["traces"].read_text().splitlines():
        trace = json.loads(line)
        tokens = trace["teacher_tokens"]
        assert tokenizer.decode(tokens["ids"], skip_special_tokens=True) == trace["reasoning"]
        assert all(len(ids) == K for ids in tokens["top_ids"])
        # Greedy: the token written is the teacher's most likely one, and its logprob is the first listed.
        assert [top[0] for top in tokens["top_ids"]] == tokens["ids"]
        assert tokens["logprobs"] == pytest.approx([top[0] for top in tokens["top_logprobs"]], abs=1e-5)


def test_kd_from_stored_top_k_lowers_the_distillation_term(kd_files, tmp_path):
    result = train_student(kd_files["traces"], settings(kd_files["student"], tmp_path / "kd"), method="kd",
                           options={"temperature": 2.0, "alpha": 0.9})
    metrics = [json.loads(line) for line in (tmp_path / "kd" / "metrics.jsonl").read_text().splitlines()]
    kd = [m["kd_loss"] for m in metrics]
    assert len(kd) == result.steps == 10 and all(m["lm_loss"] > 0 for m in metrics)
    assert sum(kd[-2:]) < sum(kd[:2]) * 0.85, kd  # two batches alternate: compare pairs
    record = json.loads((tmp_path / "kd" / "rdistill_train.json").read_text())
    measured = record["method_measured"]
    assert measured["rows"] == 8 and measured["k"] == K and measured["top1_is_the_trace_token"] == 1.0
    assert 0 < measured["teacher_mass_covered"] <= 1.0
    assert record["method_options"] == {"temperature": 2.0, "alpha": 0.9, "source": "topk", "teacher": None}


def test_dense_kd_with_a_white_box_teacher_lowers_the_distillation_term(kd_files, tmp_path):
    train_student(kd_files["gold"], settings(kd_files["student"], tmp_path / "dense"), method="kd",
                  options={"source": "dense", "teacher": str(kd_files["teacher"]), "alpha": 1.0})
    kd = [json.loads(line)["kd_loss"] for line in (tmp_path / "dense" / "metrics.jsonl").read_text().splitlines()]
    assert sum(kd[-2:]) < sum(kd[:2]) * 0.85, kd


def test_traces_without_logprobs_name_the_generate_flag(kd_files, tmp_path):
    with pytest.raises(RdistillError, match="--logprobs"):
        train_student(kd_files["gold"], settings(kd_files["student"], tmp_path / "x"), method="kd")


def test_a_student_with_another_vocabulary_is_refused_naming_both(kd_files, tmp_path):
    other = make_tiny_student(tmp_path / "other-student")  # a tokenizer learnt from another corpus
    with pytest.raises(RdistillError, match=r"reads the teacher's token ids as other text in \d+ of 8 traces.*share a vocabulary"):
        train_student(kd_files["traces"], settings(other, tmp_path / "x"), method="kd")
    with pytest.raises(RdistillError, match="do not share a vocabulary"):
        train_student(kd_files["gold"], settings(other, tmp_path / "y"), method="kd",
                      options={"source": "dense", "teacher": str(kd_files["teacher"])})


def test_packing_is_refused_with_the_fix(kd_files, tmp_path):
    with pytest.raises(RdistillError, match="packing: false"):
        train_student(kd_files["traces"], settings(kd_files["student"], tmp_path / "x", packing=True), method="kd")
