"""A planted API key must reach the server and nothing else: no cache row, no log line, no output file, no repr.

Each check first proves the key was really sent (the proxy and the adapter record what they received), so an
absent key means it was kept out, not that it was never used.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from support.anthropic_adapter import AnthropicAdapter
from support.fault_proxy import RATE_LIMIT, RESET, SERVER_ERROR, FaultPlan, FaultProxy
from support.fixtures import llama_server  # noqa: F401 - a pytest fixture
from support.llama_server import free_port

from rdistill.teachers import Completion, Request, SamplingParams, TeacherError, make_teacher

pytestmark = pytest.mark.slow

SECRET = "sk-test-PLANTED-SECRET-123"
SRC = Path(__file__).resolve().parents[1] / "src"
PARAMS = SamplingParams(temperature=0.0, max_tokens=8)


def files_under(folder: Path) -> dict[Path, bytes]:
    """Every file's raw bytes (SQLite main file, -wal and -shm included)."""
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_secret_absent(where: str, data: bytes | str) -> None:
    blob = data.encode("utf-8", "replace") if isinstance(data, str) else data
    assert SECRET.encode() not in blob, f"the planted key leaked into {where}"
    assert b"PLANTED-SECRET" not in blob, f"part of the planted key leaked into {where}"


@pytest.fixture
def planted_keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)


def test_keys_stay_out_of_cache_logs_outputs_and_reprs(llama_server, planted_keys, tmp_path, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)  # the root logger: rdistill, openai, anthropic, httpx and httpcore all log
    out_dir = tmp_path / "run"
    cache_path = out_dir / "responses.sqlite"
    requests = [Request.chat(f"Say the word number {i}.", params=PARAMS) for i in range(6)]
    # Faults make the retry path log its exceptions, which is where a key could slip into a message.
    plan = FaultPlan(share=0.5, expected_requests=6, kinds=(RATE_LIMIT, SERVER_ERROR, RESET), seed=1)
    with FaultProxy("127.0.0.1", llama_server.port, plan) as proxy, \
            AnthropicAdapter(llama_server.base_url) as adapter:
        openai_client = make_teacher(f"openai:smollm2@{proxy.url}/v1", cache=cache_path, timeout_s=30)
        anthropic_client = make_teacher(f"anthropic:smollm2@{adapter.url}", cache=cache_path, timeout_s=30)
        for client in (openai_client, anthropic_client):
            client.max_backoff_s = 0.5
        openai_results = openai_client.generate(requests)
        anthropic_results = anthropic_client.generate(requests)
        # A call that gives up: its error chain is what a user sees and what gets logged.
        dead = make_teacher(f"openai:smollm2@http://127.0.0.1:{free_port()}/v1", cache=False, max_attempts=2)
        dead.max_backoff_s = 0.1
        with pytest.raises(TeacherError) as gave_up:
            dead.complete(requests[0])

    # The key really went out, so its absence below means something.
    assert all(h.get("authorization") == f"Bearer {SECRET}" for h in proxy.headers_seen)
    assert adapter.api_keys_seen and set(adapter.api_keys_seen) == {SECRET}
    assert proxy.counts().total_faults == 3
    assert all(isinstance(r, Completion) for r in openai_results + anthropic_results)

    outputs = out_dir / "outputs.jsonl"
    outputs.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in openai_results + anthropic_results))
    openai_client.ledger.save(out_dir / "ledger.json")
    anthropic_client.ledger.save(out_dir / "anthropic-ledger.json")

    written = files_under(out_dir)
    assert {cache_path, outputs, out_dir / "ledger.json"} <= set(written)
    for path, data in written.items():
        assert_secret_absent(str(path), data)
    assert caplog.records, "expected the retries to log something"
    for record in caplog.records:
        assert_secret_absent(f"log record from {record.name}", record.getMessage())
    assert_secret_absent("the captured log text", caplog.text)
    assert_secret_absent("the error a user sees", "".join(traceback.format_exception(gave_up.value)))
    for obj in (openai_client.backend, anthropic_client.backend, openai_client, anthropic_client):
        assert_secret_absent(f"repr of {type(obj).__name__}", repr(obj))
        assert_secret_absent(f"str of {type(obj).__name__}", str(obj))


def test_keys_stay_out_of_the_cli_output_and_its_cache(llama_server, tmp_path):  # noqa: F811
    with FaultProxy("127.0.0.1", llama_server.port) as proxy:
        env = dict(os.environ, PYTHONPATH=str(SRC), RDISTILL_CACHE=str(tmp_path), OPENAI_API_KEY=SECRET)
        proc = subprocess.run([sys.executable, "-m", "rdistill", "-vv", "ask", f"openai:smollm2@{proxy.url}/v1",
                               "Say hello.", "--max-tokens", "8"], capture_output=True, text=True, env=env,
                              timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proxy.headers_seen and proxy.headers_seen[0].get("authorization") == f"Bearer {SECRET}"
    assert "DEBUG" in proc.stderr  # -vv really logged at debug level
    assert_secret_absent("the CLI's stdout", proc.stdout)
    assert_secret_absent("the CLI's stderr", proc.stderr)
    written = files_under(tmp_path)
    assert tmp_path / "responses.sqlite" in written
    for path, data in written.items():
        assert_secret_absent(str(path), data)
