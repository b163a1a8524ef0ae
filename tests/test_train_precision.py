"""Training's number format follows what the machine computes fast (train/precision.py)."""

import logging

import pytest

from rdistill.train import precision
from rdistill.train.precision import choose_precision, cpu_bf16_flags

ICE_LAKE = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"
SAPPHIRE_RAPIDS = "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"


def test_cpu_flags_are_read_from_cpuinfo():
    assert cpu_bf16_flags(ICE_LAKE) == []
    assert cpu_bf16_flags(SAPPHIRE_RAPIDS) == ["avx512_bf16", "amx_bf16"]
    assert cpu_bf16_flags("") == []


def test_a_cpu_without_native_bf16_trains_in_float32_without_measuring(monkeypatch):
    monkeypatch.setattr(precision, "matmul_gflops", lambda *a: pytest.fail("no measurement needed"))
    chosen = choose_precision(None, cuda=False, cuda_bf16=False, cpu_flags=[])
    assert chosen.bf16 is False and "without native bf16" in chosen.reason
    assert choose_precision(False, cuda=False, cuda_bf16=False, cpu_flags=[]).bf16 is False


def test_asking_for_bf16_on_an_emulating_cpu_is_kept_but_warns_with_measured_speeds(monkeypatch, caplog):
    speeds = {"float32": 136.0, "bfloat16": 1.0}
    monkeypatch.setattr(precision, "matmul_gflops", lambda name: speeds[name])
    with caplog.at_level(logging.WARNING, logger="rdistill.train.precision"):
        chosen = choose_precision(True, cuda=False, cuda_bf16=False, cpu_flags=[])
    assert chosen.bf16 is True and chosen.fp32_gflops == 136.0 and chosen.bf16_gflops == 1.0
    assert "1.0 GFLOP/s against 136.0 in float32" in caplog.text


@pytest.mark.parametrize("bf16_speed, expected", [(300.0, True), (50.0, False)])
def test_a_native_bf16_cpu_uses_bf16_only_when_it_measures_faster(monkeypatch, bf16_speed, expected):
    monkeypatch.setattr(precision, "matmul_gflops", lambda name: {"float32": 100.0, "bfloat16": bf16_speed}[name])
    chosen = choose_precision(None, cuda=False, cuda_bf16=False, cpu_flags=["amx_bf16"])
    assert chosen.bf16 is expected and "amx_bf16" in chosen.reason
    assert chosen.as_record()["bf16_gflops"] == bf16_speed


def test_gpus_follow_their_bf16_support_and_an_explicit_setting_wins():
    assert choose_precision(None, cuda=True, cuda_bf16=True).bf16 is True
    assert choose_precision(None, cuda=True, cuda_bf16=False).bf16 is False
    assert choose_precision(False, cuda=True, cuda_bf16=True).bf16 is False


def test_the_measurement_is_a_real_matrix_product():
    pytest.importorskip("torch")
    assert precision.matmul_gflops("float32", 0.05) > 0.5
