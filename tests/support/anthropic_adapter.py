"""An Anthropic Messages API endpoint on loopback, answered by a real OpenAI-compatible server.

POST /v1/messages is translated to the upstream's /v1/chat/completions and the answer is returned as a proper
Messages response (content blocks, stop_reason, usage), with Anthropic-shaped errors. This lets the real
`anthropic` SDK and `anthropic:MODEL@URL` be tested end to end against a real model, with no network.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

# OpenAI finish_reason -> Anthropic stop_reason
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal", None: "end_turn"}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


class AdapterError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _text_of(content) -> str:
    """Messages content is a string or a list of blocks; only text blocks carry meaning here."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    raise AdapterError(400, "content must be a string or a list of content blocks")


def to_chat_completion(body: dict) -> dict:
    """Messages request -> OpenAI chat-completions request."""
    for required in ("model", "max_tokens", "messages"):
        if required not in body:
            raise AdapterError(400, f"{required}: Field required")
    messages = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _text_of(system)})
    for m in body["messages"]:
        if m.get("role") not in ("user", "assistant"):
            raise AdapterError(400, f"messages: unexpected role {m.get('role')!r}")
        messages.append({"role": m["role"], "content": _text_of(m.get("content", ""))})
    chat = {"model": body["model"], "messages": messages, "max_tokens": int(body["max_tokens"])}
    for name in ("temperature", "top_p"):
        if name in body:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = list(body["stop_sequences"])
    return chat


def to_message(chat_response: dict, model: str) -> dict:
    """OpenAI chat completion -> Messages response."""
    choice = chat_response["choices"][0]
    usage = chat_response.get("usage") or {}
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": choice["message"].get("content") or ""}],
        "stop_reason": _STOP_REASONS.get(choice.get("finish_reason"), "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0)},
    }


class AnthropicAdapter:
    def __init__(self, upstream_base_url: str, *, models: tuple[str, ...] | None = None, timeout_s: float = 120.0):
        self.upstream = upstream_base_url.rstrip("/")  # ends in /v1
        self.models = models  # when set, other model names get a 404 not_found_error, as the real API does
        self.timeout_s = timeout_s
        self.requests_answered = 0
        self.api_keys_seen: list[str] = []  # the API key of each request, to prove the SDK sent one
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "AnthropicAdapter":
        adapter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's naming
                adapter._handle(self)

            def log_message(self, fmt, *args):  # route access logs to logging, not stderr
                log.debug("anthropic adapter: " + fmt, *args)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="anthropic-adapter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "AnthropicAdapter":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        # Read the body first, whatever happens next: left unread, it would corrupt the kept-alive connection.
        raw = handler.rfile.read(int(handler.headers.get("content-length") or 0))
        try:
            if handler.path.split("?")[0] != "/v1/messages":
                raise AdapterError(404, f"no route {handler.path}")
            key = _api_key_of(handler.headers)
            if not key:
                raise AdapterError(401, "an x-api-key or Authorization: Bearer header is required")
            with self._lock:
                self.api_keys_seen.append(key)
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError as e:
                raise AdapterError(400, f"invalid JSON body: {e}") from None
            if self.models is not None and body.get("model") not in self.models:
                raise AdapterError(404, f"model: {body.get('model')}")
            message = to_message(self._call_upstream(to_chat_completion(body)), body["model"])
            with self._lock:
                self.requests_answered += 1
            _send_json(handler, 200, message)
        except AdapterError as e:
            error = {"type": _ERROR_TYPES.get(e.status, "api_error"), "message": str(e)}
            _send_json(handler, e.status, {"type": "error", "error": error})

    def _call_upstream(self, chat: dict) -> dict:
        req = urllib.request.Request(f"{self.upstream}/chat/completions", data=json.dumps(chat).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            # Pass the upstream's status through, so 429/5xx stay retryable for the client.
            raise AdapterError(e.code, f"upstream answered {e.code}: {e.read()[:200]!r}") from None
        except (urllib.error.URLError, OSError) as e:
            raise AdapterError(529, f"upstream unreachable: {e}") from None


def _api_key_of(headers) -> str | None:
    """SDKs before 1.0 send `x-api-key`; later ones send `Authorization: Bearer KEY`. The API takes both."""
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _send_json(handler: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
    handler.end_headers()
    handler.wfile.write(data)
