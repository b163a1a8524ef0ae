"""The synchronous `generate`, called again and again as scripts, notebooks and benchmarks do: each call runs its
own event loop, so the SDK's HTTP client made in that loop must be closed before the loop ends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.fixtures import llama_server  # noqa: F401 - a pytest fixture

import rdistill

pytestmark = pytest.mark.slow

SRC = Path(rdistill.__file__).resolve().parents[1]  # the rdistill under test, for the child process too

SCRIPT = """
import gc
import sys
from rdistill.teachers import Request, SamplingParams, make_teacher

def one_round(round_):
    client = make_teacher(sys.argv[1], cache=False, concurrency=4)
    requests = [Request.chat(f"Say hi to person {round_}-{i}.", params=SamplingParams(max_tokens=4)) for i in range(6)]
    # Collect garbage inside the running loop, as real programs do at any allocation: a client left over from
    # an earlier loop is finalised here, and fails on its closed loop unless it was closed in time.
    results = client.generate(requests, on_result=lambda i, r: gc.collect())
    print(round_, sum(1 for r in results if hasattr(r, "text")), flush=True)

for round_ in range(3):
    one_round(round_)
"""


def test_sync_generate_closes_its_loops_http_client_before_the_loop_ends(llama_server):  # noqa: F811
    proc = subprocess.run([sys.executable, "-c", SCRIPT, f"openai:smollm2@{llama_server.base_url}"],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(SRC)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["0 6", "1 6", "2 6"]
    assert "Event loop is closed" not in proc.stderr
    assert "Task exception was never retrieved" not in proc.stderr
