"""Crash and resume: a real SIGKILL of `python -m rdistill train`, then --resume, against an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_train_random_student import ONE_THREAD, one_torch_thread, train_files  # noqa: E402,F401  (fixtures)

from rdistill.errors import RdistillError  # noqa: E402
from rdistill.train import TrainSettings, train_student  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def cli_env() -> dict[str, str]:
    return {**os.environ, **ONE_THREAD, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def cli_args(traces, student, out, *extra) -> list[str]:
    return [sys.executable, "-m", "rdistill", "train", str(traces), "--student", str(student), "-o", str(out),
            "--batch-size", "2", "--lr", "5e-3", *extra]


def losses(out: Path) -> list[tuple[int, int, float]]:
    return [(r["stage"], r["stage_step"], r["loss"])
            for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]


def kill_when(args: list[str], ready, timeout: float = 300) -> subprocess.Popen:
    """Start the CLI, SIGKILL it as soon as `ready()` holds; fail if it ended first."""
    process = subprocess.Popen(args, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be killed: {process.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("no checkpoint appeared in time")
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    return process


def complete(checkpoint: Path):
    return lambda: (checkpoint / "trainer_state.json").is_file()


def resume(args: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(args + ["--resume"], env=cli_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def uninterrupted(traces, student, out, method="cot_sft", options=None, **settings):
    train_student(traces, TrainSettings(student=str(student), output_dir=out, batch_size=2, learning_rate=5e-3,
                                        **settings), method=method, options=options)
    return losses(out)


def assert_same_curve(resumed, reference):
    assert [key[:2] for key in resumed] == [key[:2] for key in reference]  # every step once, in order
    assert max(abs(a[2] - b[2]) for a, b in zip(resumed, reference)) < 1e-4


def test_killed_lora_run_resumes_from_its_last_checkpoint_with_the_same_curve(train_files, tmp_path):
    traces, student = train_files
    out = tmp_path / "killed"
    args = cli_args(traces, student, out, "--epochs", "6", "--save-steps", "4")
    kill_when(args, complete(out / "checkpoints" / "checkpoint-4"))
    assert not (out / "rdistill_train.json").exists()  # it really died mid-run
    logged_before = len(losses(out))
    done = resume(args)
    assert "trained a cot_sft student: 36 steps" in done.stdout
    reference = uninterrupted(traces, student, tmp_path / "reference", epochs=6, save_steps=4)
    assert logged_before >= 4 and len(reference) == 36
    assert_same_curve(losses(out), reference)  # LoRA dropout and data order continue exactly: RNG was restored


@pytest.mark.slow  # two more CLI processes; the single-stage kill test above covers the mechanism
def test_curriculum_killed_in_its_second_stage_resumes_there(train_files, tmp_path):
    traces, student = train_files
    out = tmp_path / "killed"
    options = ["-m", "curriculum", "--stages", "2", "--stage-epochs", "2,4", "--save-steps", "3", "--full"]
    args = cli_args(traces, student, out, *options)
    kill_when(args, complete(out / "checkpoints" / "stage-2" / "checkpoint-3"))
    resume(args)
    reference = uninterrupted(traces, student, tmp_path / "reference", "curriculum",
                              {"stages": 2, "stage_epochs": "2,4"}, save_steps=3, lora=False)
    assert {stage for stage, _, _ in reference} == {1, 2}
    assert_same_curve(losses(out), reference)


@pytest.mark.slow
def test_curriculum_killed_between_stages_starts_the_next_from_the_finished_weights(train_files, tmp_path):
    traces, student = train_files
    out = tmp_path / "killed"
    # Checkpoints only at the end of each stage: the kill lands after stage 1 ended, before stage 2 saved anything.
    options = ["-m", "curriculum", "--stages", "2", "--stage-epochs", "1,8", "--save-steps", "1000"]
    args = cli_args(traces, student, out, *options)
    stage_one = out / "checkpoints" / "stage-1"
    kill_when(args, lambda: any((c / "trainer_state.json").is_file() for c in stage_one.glob("checkpoint-*")))
    assert not list((out / "checkpoints" / "stage-2").glob("checkpoint-*/trainer_state.json"))
    resume(args)
    reference = uninterrupted(traces, student, tmp_path / "reference", "curriculum",
                              {"stages": 2, "stage_epochs": "1,8"}, save_steps=1000)
    assert_same_curve(losses(out), reference)


def test_a_half_written_checkpoint_is_set_aside_and_the_one_before_is_used(train_files, tmp_path):
    traces, student = train_files
    out = tmp_path / "run"
    reference = uninterrupted(traces, student, out, epochs=2, save_steps=4, lora=False)  # 12 steps
    last = out / "checkpoints" / "checkpoint-12"
    (last / "trainer_state.json").unlink()  # what a kill during the save leaves: the state is written last
    (out / "rdistill_train.json").unlink()
    settings = TrainSettings(student=str(student), output_dir=out, batch_size=2, learning_rate=5e-3, epochs=2,
                             save_steps=4, lora=False, resume=True)
    result = train_student(traces, settings)
    assert (out / "checkpoints" / "incomplete-checkpoint-12").is_dir()
    assert (out / "checkpoints" / "checkpoint-12" / "trainer_state.json").is_file()
    assert result.steps == 12 and (out / "rdistill_train.json").is_file()
    assert_same_curve(losses(out), reference)


def test_resume_refuses_a_changed_run_and_a_fresh_run_refuses_a_used_folder(train_files, tmp_path):
    traces, student = train_files
    out = tmp_path / "run"
    uninterrupted(traces, student, out, max_steps=2, lora=False)
    with pytest.raises(RdistillError, match="already holds a run"):
        uninterrupted(traces, student, out, max_steps=2, lora=False)
    changed = TrainSettings(student=str(student), output_dir=out, batch_size=2, learning_rate=1e-3, max_steps=2,
                            lora=False, resume=True)
    with pytest.raises(RdistillError, match="learning_rate"):
        train_student(traces, changed)
    before = losses(out)
    same = TrainSettings(student=str(student), output_dir=out, batch_size=2, learning_rate=5e-3, max_steps=2,
                         lora=False, resume=True)
    result = train_student(traces, same)  # a finished run: nothing to train again, the outputs are rewritten
    assert result.steps == 2 and losses(out) == before and result.final_loss == before[-1][2]


def test_cli_reports_a_mistyped_method_in_one_line(train_files, tmp_path):
    traces, student = train_files
    done = subprocess.run(cli_args(traces, student, tmp_path / "o", "-m", "cot-sfx"), env=cli_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == ("error: unknown training method 'cot-sfx'. Did you mean "
                                                    "'cot_sft'? Known: answer_only, contrastive, cot_sft, "
                                                    "curriculum, dpo, kd, opd, orca, step_by_step.")
    assert not (tmp_path / "o").exists()
