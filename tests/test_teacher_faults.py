"""TeacherClient against a real llama.cpp server behind a fault-injecting proxy: retries, exactly-once answers,
the response cache on a rerun, and the budget. No mocks: a real SmolLM2-135M answers every request.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

import pytest
from support.fault_proxy import ALL_FAULTS, FaultPlan, FaultProxy, ProxyCounts
from support.fixtures import llama_server  # noqa: F401 - a pytest fixture
from support.llama_server import LlamaServer

from rdistill.teachers import BudgetExceeded, Completion, Request, SamplingParams, make_teacher
from rdistill.teachers.ledger import worst_case_cost
from rdistill.teachers.prices import load_prices, price_for

pytestmark = pytest.mark.slow

N_REQUESTS = 64
FAULT_SHARE = 0.30
CLIENT_TIMEOUT_S = 6.0  # stalls must outlast it; a real answer on 2 busy cores must not
PARAMS = SamplingParams(temperature=0.0, max_tokens=8, seed=0)


def distinct_requests(n: int, offset: int = 0) -> list[Request]:
    return [Request.chat(f"What is {i} plus {i + 3}? Reply with the number.", params=PARAMS)
            for i in range(offset, offset + n)]


def cache_rows(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


@dataclass
class FaultyRun:
    proxy: FaultProxy
    counts: ProxyCounts
    cache_path: object
    requests: list[Request]
    results: list
    indexes_seen: list[int]
    ledger: dict


@pytest.fixture(scope="module")
def faulty_run(llama_server: LlamaServer, tmp_path_factory) -> FaultyRun:  # noqa: F811
    """64 distinct requests through a proxy that fails 30% of them once (429, 500, reset, stall)."""
    plan = FaultPlan(share=FAULT_SHARE, expected_requests=N_REQUESTS, kinds=ALL_FAULTS, seed=7,
                     stall_s=CLIENT_TIMEOUT_S + 3)
    proxy = FaultProxy("127.0.0.1", llama_server.port, plan).start()
    cache_path = tmp_path_factory.mktemp("faults") / "responses.sqlite"
    client = make_teacher(f"openai:smollm2@{proxy.url}/v1", cache=cache_path, concurrency=llama_server.parallel,
                          timeout_s=CLIENT_TIMEOUT_S, max_attempts=6)
    client.max_backoff_s = 1.0  # Retry-After: 0 and a local server: no reason to wait long in a test
    requests = distinct_requests(N_REQUESTS)
    indexes_seen: list[int] = []
    results = client.generate(requests, on_result=lambda i, _result: indexes_seen.append(i))
    yield FaultyRun(proxy, proxy.counts(), cache_path, requests, results, indexes_seen, client.ledger.summary())
    proxy.stop()


def test_faults_are_retried_until_every_answer_arrives_exactly_once(faulty_run: FaultyRun):
    run = faulty_run
    planned = round(FAULT_SHARE * N_REQUESTS)
    assert run.counts.total_faults == planned
    assert set(run.counts.faults) == set(ALL_FAULTS), run.counts.faults  # every kind of fault was exercised

    failures = [r for r in run.results if not isinstance(r, Completion)]
    assert not failures, failures[:3]
    assert all(r.completion_tokens > 0 and r.prompt_tokens > 0 for r in run.results)
    assert sorted(run.indexes_seen) == list(range(N_REQUESTS))  # each request reported once, none missing
    assert cache_rows(run.cache_path) == N_REQUESTS

    totals = run.ledger["models"]["openai:smollm2"]
    assert totals["calls"] == N_REQUESTS
    assert totals["failures"] == 0
    assert totals["retries"] >= run.counts.total_faults
    assert run.counts.forwarded >= N_REQUESTS  # stalled, reset and refused requests were sent again


def test_cached_answers_match_what_each_request_received(faulty_run: FaultyRun):
    from rdistill.teachers.cache import ResponseCache

    cache = ResponseCache(faulty_run.cache_path)
    try:
        for request, result in zip(faulty_run.requests, faulty_run.results):
            stored = cache.get(request.cache_key("openai", "smollm2"))
            assert stored is not None and stored.text == result.text
    finally:
        cache.close()


def test_rerun_on_the_same_cache_makes_no_backend_call(faulty_run: FaultyRun):
    proxy = faulty_run.proxy
    received_before = proxy.counts().received
    client = make_teacher(f"openai:smollm2@{proxy.url}/v1", cache=faulty_run.cache_path, timeout_s=CLIENT_TIMEOUT_S)
    results = client.generate(faulty_run.requests)

    assert [r.text for r in results] == [r.text for r in faulty_run.results]
    assert all(r.cached for r in results)
    totals = client.ledger.summary()["models"]["openai:smollm2"]
    assert totals["calls"] == 0
    assert totals["cache_hits"] == N_REQUESTS
    assert proxy.counts().received == received_before


def test_budget_stops_the_run_before_spending_over_it_and_keeps_what_was_paid(llama_server, tmp_path):  # noqa: F811
    model = "smollm2-priced"
    prices_file = tmp_path / "prices.json"
    prices_file.write_text(json.dumps({f"openai:{model}": {"input": 3000.0, "output": 3000.0}}))
    price = price_for(load_prices(prices_file), "openai", model)
    requests = distinct_requests(16, offset=1000)
    estimated_job = sum(worst_case_cost(price, r) for r in requests)
    budget = 0.4 * estimated_job
    cache_path = tmp_path / "responses.sqlite"
    spec = f"openai:{model}@{llama_server.base_url}"

    client = make_teacher(spec, cache=cache_path, budget_usd=budget, prices=prices_file,
                          concurrency=llama_server.parallel, timeout_s=30)
    results = client.generate(requests)

    paid = [i for i, r in enumerate(results) if isinstance(r, Completion)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert paid and refused, "the budget should allow some calls and refuse the rest"
    assert len(paid) + len(refused) == len(requests)
    assert client.ledger.spent_usd <= budget
    for i in paid:  # the premise of the guarantee: no call costs more than what was reserved for it
        assert 0 < results[i].cost_usd <= worst_case_cost(price, requests[i])
    assert any("budget" in str(e) for e in refused)
    assert cache_rows(cache_path) == len(paid)

    bigger = make_teacher(spec, cache=cache_path, budget_usd=10 * estimated_job, prices=prices_file,
                          concurrency=llama_server.parallel, timeout_s=30)
    rerun = bigger.generate(requests)
    assert all(isinstance(r, Completion) for r in rerun)
    totals = bigger.ledger.summary()["models"][f"openai:{model}"]
    assert totals["cache_hits"] == len(paid)
    assert totals["calls"] == len(requests) - len(paid)
    assert [rerun[i].text for i in paid] == [results[i].text for i in paid]
