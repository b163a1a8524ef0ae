"""On-policy distillation (train method opd) with tiny random models through TRL's DistillationTrainer: the student
samples its own answers and is pulled towards a white-box teacher that shares its vocabulary."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from test_train_kd import kd_files, settings  # noqa: E402,F401  (fixture)
from test_train_random_student import make_tiny_student, one_torch_thread  # noqa: E402,F401

from rdistill.errors import RdistillError  # noqa: E402
from rdistill.train import train_student  # noqa: E402


def test_opd_trains_on_the_students_own_samples_and_saves_a_student(kd_files, tmp_path):
    from rdistill.models import load_causal_lm

    out = tmp_path / "opd"
    result = train_student(kd_files["gold"], settings(kd_files["student"], out, max_steps=4, batch_size=4,
                                                      learning_rate=1e-3, lora=True),
                           method="opd", options={"teacher": str(kd_files["teacher"]), "max_completion_length": 8})
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert result.steps == 4 and [m["step"] for m in metrics] == [1, 2, 3, 4]
    assert all(m["loss"] > 0 and 0 < m["completion_length"] <= 8 and m["tokens_per_s"] > 0 for m in metrics)
    record = json.loads((out / "rdistill_train.json").read_text())
    assert record["method"] == "opd" and record["method_options"]["beta"] == 1.0
    assert record["data"]["examples"] == 8  # the 8 questions, each once
    model, _ = load_causal_lm(str(out))  # the adapter over its base
    assert model.config.num_hidden_layers == 2


def test_opd_needs_a_teacher_with_the_students_vocabulary(kd_files, tmp_path):
    with pytest.raises(RdistillError, match="teacher=MODEL"):
        train_student(kd_files["gold"], settings(kd_files["student"], tmp_path / "a"), method="opd")
    other = make_tiny_student(tmp_path / "other")
    with pytest.raises(RdistillError, match="do not share a vocabulary"):
        train_student(kd_files["gold"], settings(other, tmp_path / "b"), method="opd",
                      options={"teacher": str(kd_files["teacher"])})
