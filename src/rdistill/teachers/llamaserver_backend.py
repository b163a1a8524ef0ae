"""`llamaserver:X`: a local GGUF model served by llama.cpp's own `llama-server`, many requests decoded at once.

    llamaserver:offline:NAME        a catalog model (models/catalog.py), e.g. llamaserver:offline:qwen2.5-coder-0.5b-instruct
    llamaserver:/path/model.gguf    any GGUF file
    llamaserver:/path/student       a LoRA student made by `rdistill train` from a catalog GGUF: its adapter is
                                    exported to GGUF once (cached in the folder as adapter.gguf, rebuilt when the
                                    adapter changes) and served on top of the base GGUF with `--lora`

The backend starts one llama-server child process on loopback when the first request arrives (parallel slots,
continuous batching, prompt-prefix reuse) and stops it on `aclose()` or at interpreter exit. On a small CPU
machine several sequences decoded together are several times faster than one at a time, so this is the way to
evaluate or generate with local models; `offline:NAME` / `llamacpp:FILE` answer one request at a time.

Decoding: greedy at temperature 0; otherwise plain temperature + top-p sampling (llama.cpp's extra top-k and
min-p filters are switched off, as the `hf:` backend and the OpenAI API sample), seeded per request with the
request's effective seed, so a seeded sample does not depend on the order requests arrive in. Is an answer the
same alone as in a batch? Only as far as llama.cpp's arithmetic is: flash attention is off by default because
its CPU kernel rounds differently in a batch; with that, SmolLM2 (Q4_1) gave identical greedy answers at 1 and 16
slots (16/16), while Qwen2.5 Q4_K_M, whose Q5_0/Q4_K layers use batched matmul kernels that round differently
from the one-sequence ones, gave 14/16 (near-ties flipped). Run the same slots for runs you compare exactly.

A final assistant message is continued, not answered (`continues_final_message`): the chat before it is rendered
with the server's own template (`/apply-template`), the partial text is appended and `/completion` goes on from
there; the completion holds only the new text. Local models cost $0; `seconds` is each request's wall time.

Both endpoints are read as a stream (server-sent events, one per generated token). On a machine shared with other
work a request may take many minutes and still be progressing, so there is no limit on its total time (unless
`request_timeout_s` asks for one); it fails when it stops progressing:
- no new event for `stall_timeout_s` (120 s) while llama-server is not computing: it is stuck;
- no new event for `busy_timeout_s` (600 s) although it is computing. One step of the server takes in the new
  prompts of all its slots together and sends no event meanwhile: on 2 cores shared with 2 other jobs such a step
  measured over 120 s, so a quiet but busy server gets the longer limit. Where its CPU time cannot be read (not
  Linux), only the first token gets the longer limit.
The completion built from the stream has the same text, token counts, finish reason and logprobs as the one
llama-server answers without streaming (tests/test_teacher_progress_timeout.py checks it field by field).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import shlex
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rdistill.errors import InputError, RdistillError
from rdistill.teachers.base import Completion, Request, TeacherError, TokenLogprob, TransientError
from rdistill.teachers.http_base import LoopClients
from rdistill.teachers.llama_server import LlamaServerError, LlamaServerProcess, default_threads

log = logging.getLogger(__name__)

HTTPX_INSTALL = "pip install httpx  (or: pip install 'rdistill[llamacpp]')"
ADAPTER_GGUF = "adapter.gguf"
# Parallel slots (sequences decoded together). Measured through llama-server on 2 cores, 64 math-prompt requests
# to Qwen2.5-Coder-1.5B Q4_K_M: 8 slots 183 s, 16 slots 162 s, 32 slots 176 s (more slots start more prompts
# cold, without a cached prefix); llama-batched-bench decode for the 0.5B: 48/131/149 tokens/s at 1/16/32.
# The KV cache of 16 slots x 2048 tokens is ~0.9 GB for the 1.5B model, ~0.4 GB for the 0.5B.
DEFAULT_SLOTS = 16
DEFAULT_CTX_PER_SLOT = 2048
# How long a request may go without a new token. A decode step of 16 slots takes well under a second on 2 cores;
# what can hold every slot for long is the server taking in many new prompts at once on a busy machine.
DEFAULT_STALL_TIMEOUT_S = 120.0
DEFAULT_BUSY_TIMEOUT_S = 600.0  # the same while the server computes (see the module docstring)
MIN_LOOK_S = 1.0  # a look at the server's CPU time within this of the last one keeps the last one's verdict
BUSY_CPU_SHARE = 0.02  # "computing": it used at least 2% of one core since the last look (a hung server: ~0)
FORMS = ("llamaserver:offline:NAME", "llamaserver:/path/model.gguf", "llamaserver:/path/to/student (a LoRA student "
         "folder made by rdistill train from a catalog GGUF, or a folder made by rdistill export --to gguf)")


@dataclass(frozen=True)
class ServedModel:
    """What one llama-server process serves, and the name the response cache and ledger know it by."""

    gguf: Path
    model_id: str
    lora: Path | None = None
    chat_template_file: Path | None = None
    context_length: int | None = None  # the model's trained context, when known


# -------------------------------------------------------------------------------------------- model strings

def resolve_target(target: str, *, lora_scale: float = 1.0) -> ServedModel:
    """What `llamaserver:TARGET` serves: a catalog model, a .gguf file or a LoRA student folder."""
    target = target.strip()
    if target.startswith("offline:"):
        from rdistill.models.catalog import get_model, model_path

        name = target.removeprefix("offline:")
        entry = get_model(name)  # unknown names fail here with a did-you-mean, before any file work
        return ServedModel(model_path(name), name, context_length=entry.context_length)
    path = Path(target).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise InputError("GGUF model file not found", path=path)
        from rdistill.teachers.llamacpp_backend import _file_identity

        return ServedModel(path, _file_identity(path))
    if path.is_dir():
        return resolve_student(path, lora_scale=lora_scale)
    if not target:
        raise RdistillError("llamaserver: needs a model: " + "; ".join(FORMS))
    raise RdistillError(f"llamaserver:{target}: not a catalog model, .gguf file or student folder; write it as one "
                        "of " + "; ".join(FORMS))


def _file_sha256(path: Path) -> str:
    """The whole file's hash (two exports of one base share their first megabytes of metadata), taken from the
    export record when it describes this very file."""
    try:
        recorded = json.loads((path.parent / "rdistill_export.json").read_text(encoding="utf-8"))["files"][path.name]
        if recorded["bytes"] == path.stat().st_size:
            return str(recorded["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def student_adapter_dir(folder: Path) -> Path | None:
    """The PEFT adapter of a student folder (OUT/adapter from `rdistill train`, or the folder itself)."""
    for candidate in (folder / "adapter", folder):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    return None


def resolve_student(folder: Path, *, lora_scale: float = 1.0) -> ServedModel:
    adapter_dir = student_adapter_dir(folder)
    exported = sorted(folder.glob("*.gguf")) if adapter_dir is None else []
    if len(exported) == 1:  # a student exported by `rdistill export --to gguf|ollama`: one merged model file
        return ServedModel(exported[0], f"{folder.resolve().name}@{exported[0].name}:{_file_sha256(exported[0])[:16]}")
    if adapter_dir is None:
        raise RdistillError(f"{folder} holds no LoRA adapter (no adapter/adapter_config.json): llamaserver: serves "
                            "LoRA students of GGUF models; evaluate a fully fine-tuned student with hf:" f"{folder}")
    base_path, base_id, context = _adapter_base(adapter_dir)
    digest = adapter_digest(adapter_dir)
    adapter_gguf = ensure_adapter_gguf(adapter_dir, base_path, folder, digest)
    template = _student_chat_template(adapter_dir, base_path, adapter_gguf.parent)
    scale = "" if lora_scale == 1.0 else f"x{lora_scale:g}"
    model_id = f"{folder.resolve().name}@lora:{digest[:12]}{scale}+{base_id}"
    return ServedModel(base_path, model_id, lora=adapter_gguf, chat_template_file=template, context_length=context)


def _adapter_base(adapter_dir: Path) -> tuple[Path, str, int | None]:
    """(base GGUF path, its identity, its context length) from the adapter's base_model_name_or_path."""
    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    base = str(config.get("base_model_name_or_path") or "")
    if base.startswith("offline:"):
        from rdistill.models.catalog import get_model, model_path

        name = base.removeprefix("offline:")
        entry = get_model(name)
        return model_path(name), name, entry.context_length
    base_path = Path(base).expanduser()
    if base_path.suffix == ".gguf" and base_path.is_file():
        from rdistill.teachers.llamacpp_backend import _file_identity

        return base_path, _file_identity(base_path), None
    raise RdistillError(f"{adapter_dir}: the adapter's base model is {base or 'not recorded'!s}, not a GGUF model "
                        "(offline:NAME): llamaserver: serves LoRA students of catalog GGUF models; evaluate this "
                        f"one with hf:{adapter_dir.parent if adapter_dir.name == 'adapter' else adapter_dir}")


def adapter_digest(adapter_dir: Path) -> str:
    """SHA-256 over the adapter's config and weights: the student's identity and the export's cache key."""
    from rdistill.models.lora_gguf import EXPORT_FORMAT_VERSION

    digest = hashlib.sha256(f"rdistill-lora-gguf-v{EXPORT_FORMAT_VERSION}\n".encode())
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        path = adapter_dir / name
        if not path.is_file():
            raise RdistillError(f"{adapter_dir} has no {name}: it is not a complete PEFT LoRA adapter")
        digest.update(f"{name}:{path.stat().st_size}\n".encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def ensure_adapter_gguf(adapter_dir: Path, base_gguf: Path, folder: Path, digest: str) -> Path:
    """The adapter as a llama.cpp LoRA GGUF, exported once and cached in the student folder (adapter.gguf plus a
    stamp naming the adapter's hash); re-exported when the adapter changes. A read-only folder caches it under
    the rdistill cache instead."""
    from rdistill.models.lora_gguf import export_lora_to_gguf

    for target in (folder / ADAPTER_GGUF, _cache_adapter_path(digest)):
        stamp = target.with_name(target.name + ".json")
        try:
            if target.is_file() and json.loads(stamp.read_text(encoding="utf-8")).get("adapter_sha256") == digest:
                return target
        except (OSError, ValueError):
            pass
        try:
            started = time.perf_counter()
            export_lora_to_gguf(adapter_dir, base_gguf, target)
            stamp.write_text(json.dumps({"adapter_sha256": digest, "adapter": str(adapter_dir.resolve()),
                                         "base": str(base_gguf)}, indent=2) + "\n", encoding="utf-8")
            log.info("exported %s to %s in %.1fs", adapter_dir, target, time.perf_counter() - started)
            return target
        except PermissionError:
            log.info("%s is not writable; caching the adapter GGUF under the rdistill cache", target.parent)
    raise RdistillError(f"cannot write the adapter GGUF for {adapter_dir} (the folder and the cache are read-only)")


def _cache_adapter_path(digest: str) -> Path:
    from rdistill.models.catalog import default_cache_dir

    return default_cache_dir().parent / "adapters" / f"{digest[:32]}.gguf"


def _student_chat_template(adapter_dir: Path, base_gguf: Path, where: Path) -> Path | None:
    """A template file for llama-server when the student was trained with a chat template other than the one
    its base GGUF carries (e.g. rdistill's plain Q/A layout for a base model); None when they agree."""
    template = _tokenizer_chat_template(adapter_dir)
    if template is None:
        return None
    from rdistill.models.lora_gguf import gguf_base_chat_template

    if (gguf_base_chat_template(base_gguf) or "").strip() == template.strip():
        return None
    path = where / "adapter.chat_template.jinja"
    try:
        if not path.is_file() or path.read_text(encoding="utf-8") != template:
            path.write_text(template, encoding="utf-8")
    except PermissionError:
        path = _cache_adapter_path(hashlib.sha256(template.encode()).hexdigest()).with_suffix(".jinja")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template, encoding="utf-8")
    return path


def _tokenizer_chat_template(folder: Path) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    try:
        template = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template")
    except (OSError, ValueError):
        return None
    if isinstance(template, list):  # several named templates: the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    return template if isinstance(template, str) and template.strip() else None


# ---------------------------------------------------------------------------------------------------- backend

class StallError(TransientError):
    """llama-server sent nothing for the stall limit: the request is stuck, not slow."""


class LlamaServerBackend(LoopClients):
    provider = "llamaserver"
    local = True
    continues_final_message = True  # a final assistant message is continued (see the module docstring)
    adaptive_concurrency = True  # the slots share this machine's cores: the client follows their speed

    def __init__(self, target: str, *, slots: int | None = None, threads: int | None = None,
                 ctx_per_slot: int | None = None, lora_scale: float = 1.0, model_name: str | None = None,
                 startup_timeout_s: float = 300.0, stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S,
                 busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S, request_timeout_s: float | None = None,
                 log_dir: str | os.PathLike | None = None, flash_attn: str = "off",
                 extra_args: Sequence[str] | str = ()):
        try:
            import httpx  # noqa: F401
        except ImportError:
            raise RdistillError(f"the llamaserver backend needs httpx: {HTTPX_INSTALL}") from None
        if slots is not None and slots < 1:
            raise RdistillError(f"slots must be at least 1, got {slots}")
        if min(stall_timeout_s, busy_timeout_s, request_timeout_s or 1) <= 0:
            raise RdistillError("stall_timeout_s, busy_timeout_s and request_timeout_s must be positive (seconds)")
        self.target = target
        self.served = resolve_target(target, lora_scale=lora_scale)
        self.model = model_name or self.served.model_id
        self.slots = slots or DEFAULT_SLOTS
        self.default_concurrency = self.slots
        self.threads = threads or default_threads()
        ctx = ctx_per_slot or DEFAULT_CTX_PER_SLOT
        if self.served.context_length:
            ctx = min(ctx, self.served.context_length)
        self.ctx_per_slot = ctx
        self.startup_timeout_s = startup_timeout_s
        self.stall_timeout_s = stall_timeout_s  # the client sees it and sets no total limit of its own
        self.busy_timeout_s = max(busy_timeout_s, stall_timeout_s)
        self.request_timeout_s = request_timeout_s  # a total limit per request, only when asked for
        self.server = LlamaServerProcess(
            self.served.gguf, slots=self.slots, ctx_per_slot=self.ctx_per_slot, threads=self.threads,
            lora=[(self.served.lora, lora_scale)] if self.served.lora else (),
            chat_template_file=self.served.chat_template_file, log_dir=log_dir, flash_attn=flash_attn,
            extra_args=shlex.split(extra_args) if isinstance(extra_args, str) else extra_args)
        self._start_lock = threading.Lock()
        self._started = False
        LoopClients.__init__(self)

    def __repr__(self) -> str:
        return f"LlamaServerBackend(model={self.model!r}, slots={self.slots}, server={self.server!r})"

    # -- the server -----------------------------------------------------------------------------------------

    def start(self) -> LlamaServerProcess:
        """Start the server now (the first request does it otherwise). A server that died is not restarted:
        its requests fail with the reason, and a new backend starts a new one."""
        with self._start_lock:
            if not self._started:
                self.server.start(ready_timeout_s=self.startup_timeout_s)
                self._started = True
            elif not self.server.alive():
                raise self._died()
        return self.server

    def _died(self) -> LlamaServerError:
        return LlamaServerError(f"llamaserver:{self.model}: the server stopped while serving; "
                                f"{self.server.describe_exit()}")

    async def _ready_server(self) -> LlamaServerProcess:
        if self._started and self.server.alive():
            return self.server
        return await asyncio.to_thread(self.start)

    # -- HTTP -------------------------------------------------------------------------------------------------

    def _make_client(self):
        import httpx

        limits = httpx.Limits(max_connections=max(self.slots * 2, 8), max_keepalive_connections=self.slots * 2)
        # httpx's read timeout is the time between two reads: a backstop behind the stall limit in _stream.
        read = self.busy_timeout_s + 30.0
        return httpx.AsyncClient(timeout=httpx.Timeout(read, connect=10.0), limits=limits,
                                 trust_env=False)

    async def _close_client(self, client) -> None:
        await client.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One plain JSON request (/apply-template: no generation, answered at once)."""
        server = await self._ready_server()
        async with self._http_errors():
            response = await self._client().post(f"{server.root_url}{path}", json=body)
        await self._check_status(response)
        try:
            return response.json()
        except ValueError:
            raise TransientError(f"llama-server sent a response that is not JSON: {response.text[:200]!r}") from None

    async def _stream(self, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Every event of a streamed generation, in order; a StallError once it stops progressing (_Watch)."""
        server = await self._ready_server()
        client = self._client()
        # return_progress: while the server takes in a long prompt it sends progress events, which count too.
        request = client.build_request("POST", f"{server.root_url}{path}",
                                       json={**body, "stream": True, "return_progress": True})
        events: list[dict[str, Any]] = []
        watch = _Watch(self)

        async def progressing(awaitable):
            task = asyncio.ensure_future(awaitable)
            try:
                while not task.done():
                    wait = watch.next_wait()
                    if wait is None:
                        raise watch.error()
                    await asyncio.wait({task}, timeout=wait)
                return task.result()
            finally:
                task.cancel()  # a no-op once it is done

        async with self._http_errors():
            # llama-server sends its headers with the first event: waiting for them is waiting for progress too.
            response = await progressing(client.send(request, stream=True))
            watch.event(token=False)  # the headers are progress too (and the next look must not come at once)
            try:
                if response.status_code >= 400:
                    await response.aread()
                    await self._check_status(response)
                lines = response.aiter_lines()
                while True:
                    try:
                        line = await progressing(anext(lines))
                    except StopAsyncIteration:
                        break
                    event = _sse_event(line)  # None for blank lines and the server's keep-alive comments
                    if event is None:
                        continue
                    if event == "[DONE]":
                        break
                    if "error" in event:
                        raise self._event_error(event)
                    events.append(event)
                    watch.event(token="prompt_progress" not in event)
            finally:
                await response.aclose()
        return events

    def server_cpu_s(self) -> float | None:
        """CPU seconds the llama-server process has used so far (Linux), None where that cannot be read."""
        process = self.server.process
        if process is None:
            return None
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        except (OSError, ValueError, IndexError):
            return None

    async def _ended_early(self) -> Exception:
        """The error for a stream that stopped before its last event: the server's death, or a retryable one."""
        if await asyncio.to_thread(self._exited_soon):
            return self._died()
        return TransientError("llama-server's stream ended before the answer did")

    @contextlib.asynccontextmanager
    async def _http_errors(self):
        """httpx's errors as TransientError, or as the server's death when it ended."""
        import httpx

        try:
            yield
        except httpx.TimeoutException as e:
            raise TransientError(f"request to llama-server timed out ({type(e).__name__})") from e
        except httpx.TransportError as e:
            if await asyncio.to_thread(self._exited_soon):
                raise self._died() from None
            raise TransientError(f"connection to llama-server failed: {e!r}") from e

    async def _check_status(self, response) -> None:
        if response.status_code >= 500 or response.status_code in (408, 429):
            if await asyncio.to_thread(self._exited_soon):
                raise self._died() from None
            raise TransientError(f"llama-server answered HTTP {response.status_code}: {_error_message(response)}",
                                 status=response.status_code)
        if response.status_code >= 400:
            raise TeacherError(self._client_error(response))

    def _exited_soon(self, wait_s: float = 1.0) -> bool:
        """True when the server process has ended (or ends within `wait_s`: a killed server's sockets close a
        moment before the process can be reaped)."""
        process = self.server.process
        if process is None:
            return False
        try:
            process.wait(timeout=wait_s)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: still running
            return False
        return True

    def _client_error(self, response) -> str:
        try:
            kind = response.json().get("error", {}).get("type", "")
        except (ValueError, AttributeError):
            kind = ""
        return self._request_error(response.status_code, _error_message(response), kind)

    def _request_error(self, status: int | str, message: str, kind: str) -> str:
        hint = ""
        if kind == "exceed_context_size_error" or "context size" in message:
            hint = (f" (each of the {self.slots} slots holds {self.ctx_per_slot} tokens: pass a larger "
                    "ctx_per_slot, or fewer max_tokens)")
        return f"llamaserver:{self.model}: HTTP {status}: {message}{hint}"

    def _event_error(self, event: dict[str, Any]) -> Exception:
        """An error the server sent inside the stream: a bad request fails for good, anything else is retried."""
        error = event.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        kind = str(error.get("type") or "") if isinstance(error, dict) else ""
        if isinstance(code, int) and 400 <= code < 500 and code not in (408, 429):
            return TeacherError(self._request_error(code, _error_text(event), kind))
        return TransientError(f"llama-server failed while generating: {_error_text(event)}",
                              status=code if isinstance(code, int) else None)

    # -- the Backend protocol --------------------------------------------------------------------------------

    async def complete(self, request: Request) -> Completion:
        start = time.perf_counter()
        if request.messages and request.messages[-1][0] == "assistant":
            completion = await self._continue(request)
        else:
            completion = await self._chat(request)
        completion.seconds = time.perf_counter() - start
        return completion

    def _sampling(self, request: Request) -> dict[str, Any]:
        p = request.params
        body: dict[str, Any] = {
            "temperature": p.temperature, "top_p": p.top_p,
            # Plain temperature + top-p, as the OpenAI API and the hf: backend sample: no top-k / min-p cut.
            "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0,
            # Reuse the KV of the longest prompt prefix a slot already holds (a shared system prompt, say).
            "cache_prompt": True,
        }
        if p.stop:
            body["stop"] = list(p.stop)
        seed = request.effective_seed
        if seed is not None:
            body["seed"] = seed
        return body

    async def _chat(self, request: Request) -> Completion:
        p = request.params
        body = {"messages": request.message_dicts(), "max_tokens": p.max_tokens, "n": 1, **self._sampling(request),
                "stream_options": {"include_usage": True}}
        if p.top_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = p.top_logprobs
        text, logprobs, finish, usage, timings = [], [], None, {}, {}
        for event in await self._stream("/v1/chat/completions", body):
            usage = event.get("usage") or usage
            timings = event.get("timings") or timings
            for choice in event.get("choices") or []:
                text.append((choice.get("delta") or {}).get("content") or "")
                logprobs += _chat_logprobs(choice) or []
                finish = choice.get("finish_reason") or finish
        if finish is None:
            raise await self._ended_early()
        return Completion(text="".join(text),
                          prompt_tokens=int(usage.get("prompt_tokens") or 0),
                          completion_tokens=int(usage.get("completion_tokens") or 0),
                          finish_reason=finish, logprobs=logprobs or None,
                          cached_prompt_tokens=_cached_prompt_tokens(timings))

    async def _continue(self, request: Request) -> Completion:
        """Go on from a partial final assistant message: render the chat before it with the generation prompt,
        append the partial text, and complete that raw prompt."""
        p = request.params
        *before, partial = request.message_dicts()
        rendered = await self._post("/apply-template", {"messages": before})
        prompt = rendered.get("prompt")
        if not isinstance(prompt, str):
            raise TransientError("llama-server's /apply-template sent no prompt")
        body = {"prompt": prompt + partial["content"], "n_predict": p.max_tokens, **self._sampling(request)}
        if p.top_logprobs:
            body["n_probs"] = p.top_logprobs
        events = await self._stream("/completion", body)
        final = next((e for e in reversed(events) if e.get("stop")), None)
        if final is None:
            raise await self._ended_early()
        data = {**final, "content": "".join(e.get("content") or "" for e in events),
                "completion_probabilities": [s for e in events for s in e.get("completion_probabilities") or []]}
        stop_type = data.get("stop_type")
        finish = "length" if stop_type == "limit" or (data.get("truncated") and stop_type != "eos") else "stop"
        return Completion(text=data.get("content") or "",
                          prompt_tokens=int(data.get("tokens_evaluated") or 0),
                          completion_tokens=int(data.get("tokens_predicted") or 0),
                          finish_reason=finish,
                          logprobs=_completion_logprobs(data) if p.top_logprobs else None,
                          cached_prompt_tokens=_cached_prompt_tokens(data.get("timings") or {}))

    async def aclose(self) -> None:
        """Close every loop's HTTP client, then stop the server."""
        await self.close_all_clients()
        await asyncio.to_thread(self.server.stop)
        with self._start_lock:
            self._started = False


class _Watch:
    """When a streamed request stops progressing (the rule is in the module docstring)."""

    def __init__(self, backend: LlamaServerBackend):
        self.backend = backend
        self.started = time.monotonic()
        self.tokens = 0  # events other than prompt progress
        self.computing: bool | None = None  # what the last look at the server's CPU time found (None: unknown)
        self.event(token=False)

    def event(self, token: bool) -> None:
        self.last = time.monotonic()
        self.tokens += token
        self._mark = (self.last, self.backend.server_cpu_s())  # CPU use is measured from the last event or look

    def next_wait(self) -> float | None:
        """Seconds to wait for the next event; None when the request is to fail now."""
        b, now = self.backend, time.monotonic()
        quiet = now - self.last
        total_left = math.inf if b.request_timeout_s is None else b.request_timeout_s - (now - self.started)
        if total_left <= 0:
            return None
        if quiet < b.stall_timeout_s:
            wait = b.stall_timeout_s - quiet
        elif quiet < b.busy_timeout_s and self._still_computing(now):
            wait = min(b.stall_timeout_s, b.busy_timeout_s - quiet)  # look again then
        else:
            return None
        return min(wait, total_left)

    def _still_computing(self, now: float) -> bool:
        (then, cpu_then) = self._mark
        if self.computing is not None and now - then < MIN_LOOK_S:
            # Too soon after the last look to measure: CPU time moves in 10 ms ticks, so a look a moment later
            # sees none used and would call a busy server hung (it did, under load, in bench/generate_under_load).
            return self.computing
        cpu = self.backend.server_cpu_s()
        self._mark = (now, cpu)
        if cpu is None or cpu_then is None:
            self.computing = None
            return self.tokens == 0  # unknown: only the prompt step, which sends nothing, gets the longer limit
        self.computing = cpu - cpu_then >= BUSY_CPU_SHARE * (now - then)
        log.debug("no token for %.0fs; llama-server used %.1f CPU-seconds in the last %.0fs", now - self.last,
                  cpu - cpu_then, now - then)
        return self.computing

    def error(self) -> TransientError:
        b, now = self.backend, time.monotonic()
        quiet, total = now - self.last, now - self.started
        if b.request_timeout_s is not None and total >= b.request_timeout_s:
            return TransientError(f"llama-server's answer took over request_timeout_s={b.request_timeout_s:g}s "
                                  f"in all ({self.tokens} tokens by then)")
        what = "no first token" if self.tokens == 0 else "no new token"
        if quiet >= b.busy_timeout_s and self.computing:
            why = f"although it was computing (busy_timeout_s={b.busy_timeout_s:g})"
        elif self.computing is False:
            why = f"and was not computing (stall_timeout_s={b.stall_timeout_s:g})"
        else:
            limit = b.stall_timeout_s if self.tokens else b.busy_timeout_s
            why = f"(stall limit {'stall' if self.tokens else 'busy'}_timeout_s={limit:g})"
        return StallError(f"llama-server sent {what} for {quiet:.1f}s {why}; {self.tokens} tokens before that, "
                          f"{total:.0f}s in all")


def _cached_prompt_tokens(timings: dict[str, Any]) -> int | None:
    """llama-server's `timings.cache_n`: prompt tokens reused from the slot's KV cache (prompt_n were computed)."""
    value = timings.get("cache_n")
    return int(value) if isinstance(value, (int, float)) else None


def _sse_event(line: str) -> dict[str, Any] | str | None:
    """The JSON of one `data: ...` line of a server-sent event stream ("[DONE]" as is); None for other lines."""
    if line.startswith("error:"):  # some builds announce an error as its own event type
        line = "data:" + line.removeprefix("error:")
    if not line.startswith("data:"):
        return None
    payload = line.removeprefix("data:").strip()
    if payload == "[DONE]":
        return payload
    try:
        event = json.loads(payload)
    except ValueError:
        raise TransientError(f"llama-server sent an event that is not JSON: {payload[:200]!r}") from None
    return event if isinstance(event, dict) else {"error": event}


def _error_text(event: dict[str, Any]) -> str:
    error = event.get("error")
    return str(error.get("message") or error) if isinstance(error, dict) else str(error)


def _error_message(response) -> str:
    try:
        error = response.json().get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if error:
            return str(error)
    except (ValueError, AttributeError):
        pass
    return response.text[:300]


def _chat_logprobs(choice: dict[str, Any]) -> list[TokenLogprob] | None:
    content = (choice.get("logprobs") or {}).get("content")
    if not content:
        return None
    return [_token_logprob(t) for t in content]


def _token_logprob(step: dict[str, Any]) -> TokenLogprob:
    """One generated token as llama-server reports it: text, logprob, top alternatives, and their vocabulary ids."""
    top = step.get("top_logprobs") or []
    ids = [a.get("id") for a in top]
    return TokenLogprob(step["token"], float(step["logprob"]), [(a["token"], float(a["logprob"])) for a in top],
                        step.get("id"), ids if top and None not in ids else None)


def _completion_logprobs(data: dict[str, Any]) -> list[TokenLogprob] | None:
    steps = data.get("completion_probabilities")
    if not steps:
        return None
    out = []
    for step in steps:
        if "logprob" in step:  # current llama-server
            out.append(_token_logprob(step))
        else:  # older builds report probabilities
            probs = step.get("probs") or []
            top = [(a["tok_str"], math.log(max(float(a["prob"]), 1e-45))) for a in probs]
            chosen = next((lp for tok, lp in top if tok == step.get("content")), top[0][1] if top else 0.0)
            out.append(TokenLogprob(step.get("content", ""), chosen, top))
    return out
