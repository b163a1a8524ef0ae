"""`anthropic:MODEL@URL` through the real `anthropic` SDK, against a loopback Messages API endpoint that a real
SmolLM2-135M answers (support/anthropic_adapter.py), with a fault proxy in front for 429s.
"""

from __future__ import annotations

import pytest
from support.anthropic_adapter import AnthropicAdapter
from support.fault_proxy import RATE_LIMIT, FaultPlan, FaultProxy
from support.fixtures import llama_server  # noqa: F401 - a pytest fixture

from rdistill.errors import RdistillError
from rdistill.teachers import Completion, Request, SamplingParams, make_teacher

pytestmark = pytest.mark.slow

MODEL = "claude-smollm2"
PARAMS = SamplingParams(temperature=0.0, max_tokens=12)


@pytest.fixture
def adapter(llama_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-dummy-key")
    with AnthropicAdapter(llama_server.base_url, models=(MODEL,)) as running:
        yield running


def test_messages_api_answers_records_usage_and_retries_429s(adapter, llama_server):  # noqa: F811
    n = 8
    plan = FaultPlan(share=0.5, expected_requests=n, kinds=(RATE_LIMIT,), seed=3)
    requests = [Request.chat(f"Name the number after {i}.", system="Answer briefly.", params=PARAMS) for i in range(n)]
    with FaultProxy("127.0.0.1", adapter.port, plan) as proxy:
        client = make_teacher(f"anthropic:{MODEL}@{proxy.url}", cache=False, concurrency=llama_server.parallel,
                              timeout_s=30)
        client.max_backoff_s = 1.0
        results = client.generate(requests)
        injected = proxy.counts().faults[RATE_LIMIT]

    assert injected == n // 2
    assert all(isinstance(r, Completion) for r in results), results
    assert all(r.text.strip() for r in results)
    assert all(r.prompt_tokens > 0 and r.completion_tokens > 0 for r in results)
    assert {r.finish_reason for r in results} <= {"end_turn", "max_tokens"}
    totals = client.ledger.summary()["models"][f"anthropic:{MODEL}"]
    assert totals["calls"] == n
    assert totals["prompt_tokens"] == sum(r.prompt_tokens for r in results)
    assert totals["completion_tokens"] == sum(r.completion_tokens for r in results)
    assert totals["retries"] >= injected
    assert adapter.requests_answered == n
    assert set(adapter.api_keys_seen) == {"test-dummy-key"}


def test_system_prompt_reaches_the_model(adapter):
    """Anthropic carries the system prompt outside `messages`; the backend must still send it."""
    client = make_teacher(f"anthropic:{MODEL}@{adapter.url}", cache=False, timeout_s=30)
    short = client.complete(Request.chat("Hello", system="Be brief.", params=PARAMS))
    long_system = "You are a careful assistant. " * 20
    long = client.complete(Request.chat("Hello", system=long_system, params=PARAMS))
    # The chat template puts the system prompt into the model's input: 20 repeated sentences add 100+ tokens.
    assert long.prompt_tokens >= short.prompt_tokens + 100


def test_a_non_retryable_error_fails_at_once_with_one_line(adapter):
    client = make_teacher(f"anthropic:no-such-model@{adapter.url}", cache=False, timeout_s=30)
    with pytest.raises(RdistillError, match="HTTP 404") as excinfo:
        client.complete(Request.chat("Hello", params=PARAMS))
    assert "\n" not in str(excinfo.value)
    totals = client.ledger.summary()["models"].get("anthropic:no-such-model", {})
    assert totals.get("retries", 0) == 0
    assert adapter.requests_answered == 0
