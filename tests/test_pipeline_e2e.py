"""Slow: `rdistill run` for real, in a subprocess as a user runs it.

- killed with SIGKILL in the middle of generation, then run again: it continues from the traces already written;
- a tiny end-to-end recipe (the real SmolLM2-135M GGUF as teacher, a tiny random student) reaches the report, a
  rerun skips every stage, and a report-only change re-runs only the report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, SHARED_DATA, run_cli
from rdistill.jsonl import load_records
from rdistill.records import EvalResult

pytest.importorskip("torch")
pytest.importorskip("trl")

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def env_for(tmp_path: Path) -> dict[str, str]:
    return {**ONE_THREAD, "RDISTILL_CACHE": str(tmp_path / "cache"),
            "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkill_in_the_middle_of_generation_then_rerun_continues_from_the_written_traces(tmp_path):
    from support.tiny_lm import save_tiny_lm

    teacher = save_tiny_lm(tmp_path / "teacher")
    recipe = tmp_path / "kill.yaml"
    recipe.write_text(f"""\
name: kill
teacher:
  model: hf:{teacher}
student:
  model: {teacher}
data:
  train:
    - synth: arithmetic
      n: 60
generate:
  strategy: cot
  max_tokens: 48
filter:
  require_correct: false
  check_arithmetic: false
""")
    run_dir = tmp_path / "run"
    partial = run_dir / ".partial" / "generate" / "traces.jsonl"
    env = {**os.environ, **env_for(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "rdistill", "run", str(recipe), "--run-dir", str(run_dir),
                             "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    written = 0
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            written = len(jsonl(partial)) if partial.exists() else 0
            if written >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.communicate()[1][-2000:]}"
        assert written >= 3, "no traces appeared in time"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    m = manifest(run_dir)
    assert m["stages"]["data"]["status"] == "done"
    assert m["stages"]["generate"]["status"] == "running" and not (run_dir / "generate").exists()
    before = jsonl(partial)
    assert 3 <= len(before) < 60

    rerun = run_cli("run", str(recipe), "--run-dir", str(run_dir), env=env_for(tmp_path), timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "data: skipped (unchanged)" in rerun.stderr and "generate: resuming an interrupted run" in rerun.stderr
    traces = jsonl(run_dir / "generate" / "traces.jsonl")
    assert len(traces) == 60 and len({t["problem_id"] for t in traces}) == 60
    assert traces[:len(before)] == before  # appended to, never rewritten
    summary = json.loads((run_dir / "generate" / "summary.json").read_text())
    assert summary["already_done"] >= len(before) and summary["problems"] == 60
    m = manifest(run_dir)
    assert m["stages"]["generate"]["status"] == "done" and m["stages"]["generate"]["attempts"] == 2
    assert m["stages"]["filter"]["status"] == "done" and not (run_dir / ".partial").exists()


@pytest.fixture(scope="module")
def smollm2_gguf():
    from rdistill.errors import RdistillError
    from rdistill.models.catalog import model_path

    try:
        return model_path("smollm2-135m-instruct")
    except RdistillError as e:
        pytest.skip(str(e))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_tiny_recipe_runs_end_to_end_to_the_report_and_reruns_skip(tmp_path, smollm2_gguf):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark copies not found at {SHARED_DATA}")
    from test_train_random_student import make_tiny_student, write_traces

    student = make_tiny_student(tmp_path / "student", write_traces(tmp_path / "corpus.jsonl", 12))
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(f"""\
name: tiny
teacher:
  model: offline:smollm2-135m-instruct
  backend_options: {{n_threads: 1}}   # one llama.cpp thread: two spin against each other on a busy 2-core machine
student:
  model: {student}
data:
  train:
    - synth: arithmetic
      n: 4
      steps: 1-2
  eval:
    heldout: {{synth: arithmetic, n: 2, steps: 1-2}}
    transfer: {{bench: multiarith, path: {SHARED_DATA / "multiarith"}, limit: 2}}
    harder: {{synth: arithmetic, n: 2, steps: 3}}
generate:
  strategy: rationalize
  max_tokens: 64
filter:
  require_correct: false
  check_arithmetic: false
train:
  max_steps: 1
  batch_size: 2
  max_length: 384
  methods:
    answer_only:
    cot_sft:
    step_by_step: {{eval_tasks: [rationale]}}   # also asked through its rationale task
eval:
  max_tokens: 24
  faithfulness_n: 0
""")
    run_dir = tmp_path / "run"
    first = run_cli("run", str(recipe), "--run-dir", str(run_dir), env=env_for(tmp_path), timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"report: {run_dir / 'report' / 'report.html'}" in first.stdout
    for name in ("teacher", "baseline [plain]", "baseline [teacher]", "answer_only", "cot_sft",
                 "step_by_step [trained:rationale]"):
        assert name in first.stdout  # the headline table
    assert "22 stage(s) ran, 0 skipped" in first.stdout

    m = manifest(run_dir)
    assert all(entry["status"] == "done" for entry in m["stages"].values()) and len(m["stages"]) == 22
    assert m["teacher"]["generation"]["sha256"] and m["teacher"]["generation"]["offline"] == "smollm2-135m-instruct"
    assert m["stages"]["generate"]["usage"]["calls"] == 4 and m["stages"]["data"]["outputs"]["train"]["sha256"]
    assert m["seeds"]["generate"] == 0 and m["versions"]["torch"]
    assert {"run:data/train.jsonl", "run:data/eval/transfer.jsonl", "data.eval.transfer.path"} <= set(m["data_hashes"])
    headline = json.loads((run_dir / "report" / "headline.json").read_text())
    assert headline["sets"] == ["heldout", "transfer", "harder"] and len(headline["rows"]) == 7
    assert all(row["accuracy"][s]["n"] == 2 for row in headline["rows"] for s in headline["sets"])
    assert (run_dir / "train" / "cot_sft" / "rdistill_train.json").is_file()
    rationale = load_records(run_dir / "eval" / "step_by_step" / "heldout" / "trained.rationale.jsonl", EvalResult)
    assert {r.metadata["run"]["student_task"] for r in rationale} == {"rationale"}
    students = [row for row in headline["rows"] if row["role"] == "student"]
    assert all(len(row["paired"]["heldout"]) == 2 for row in students)  # against the teacher and the baseline used
    report = json.loads((run_dir / "report" / "report.json").read_text())
    assert [b["bench"] for b in report["benches"]] == ["heldout", "transfer", "harder"]  # the recipe's order
    markdown = (run_dir / "report" / "report.md").read_text()
    assert "## What distilling cost, and what it saves" in markdown and "## What did not distill" in markdown
    assert markdown.index("## What did not distill") < markdown.index("## heldout")

    second = run_cli("run", str(recipe), "--run-dir", str(run_dir), env=env_for(tmp_path), timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "0 stage(s) ran, 22 skipped" in second.stdout and "cot_sft" in second.stdout

    third = run_cli("run", str(recipe), "report.hourly_usd=2", "--run-dir", str(run_dir), env=env_for(tmp_path),
                    timeout=300)
    assert third.returncode == 0, third.stderr[-3000:]
    assert manifest(run_dir)["invocations"][-1]["ran"] == ["report"]
