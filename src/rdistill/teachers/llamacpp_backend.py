"""`llamacpp:PATH.gguf` in-process through llama-cpp-python, and `offline:NAME` for the real small models
that PyPI packages carry (joined and hash-checked by models/catalog.py, then served the same way).

One llama.cpp context is not thread-safe, so calls are serialised behind a lock and run in a worker thread;
for parallel local throughput, serve the GGUF with llama-server (parallel slots) and use `openai:…@URL`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from pathlib import Path

from rdistill.errors import InputError, RdistillError
from rdistill.teachers.base import Completion, Request, TokenLogprob

LLAMA_CPP_INSTALL = "pip install 'rdistill[llamacpp]'  (or: pip install llama-cpp-python)"


def _import_llama():
    try:
        from llama_cpp import Llama
    except ImportError:
        raise RdistillError(f"the llamacpp backend needs llama-cpp-python: {LLAMA_CPP_INSTALL}") from None
    return Llama


def _file_identity(path: Path) -> str:
    """Name + size + hash of the first MiB: distinguishes two GGUFs that share a file name, cheaply."""
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    return f"{path.name}:{path.stat().st_size}:{hashlib.sha256(head).hexdigest()[:12]}"


class LlamaCppBackend:
    provider = "llamacpp"
    local = True
    default_concurrency = 1

    def __init__(self, model_path: str | os.PathLike, *, n_ctx: int = 4096, n_threads: int | None = None,
                 model_name: str | None = None, seed: int = 0, chat_format: str | None = None):
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise InputError("GGUF model file not found", path=path)
        self.path = path
        self.model = model_name or _file_identity(path)
        self._kwargs = dict(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or os.cpu_count(),
                            seed=seed, verbose=False, chat_format=chat_format)
        self._llm = None
        self._logits_all = False
        self._lock = threading.Lock()

    def _load(self, need_logprobs: bool = False):
        # llama.cpp keeps logits of every position only when built with logits_all=True, which costs memory and
        # speed; load that way only once a request asks for per-token logprobs.
        if self._llm is not None and need_logprobs and not self._logits_all:
            self._llm.close()
            self._llm = None
        if self._llm is None:
            Llama = _import_llama()
            self._logits_all = need_logprobs
            self._llm = Llama(**{k: v for k, v in self._kwargs.items() if v is not None}, logits_all=need_logprobs)
        return self._llm

    def _complete_sync(self, request: Request) -> Completion:
        p = request.params
        with self._lock:
            llm = self._load(need_logprobs=p.top_logprobs > 0)
            start = time.perf_counter()
            kwargs = dict(messages=request.message_dicts(), temperature=p.temperature, top_p=p.top_p,
                          max_tokens=p.max_tokens, stop=list(p.stop) or None)
            seed = request.effective_seed
            if seed is not None:
                kwargs["seed"] = seed
            if p.top_logprobs:
                kwargs["logprobs"] = True
                kwargs["top_logprobs"] = p.top_logprobs
            resp = llm.create_chat_completion(**kwargs)
            seconds = time.perf_counter() - start
        choice = resp["choices"][0]
        usage = resp.get("usage") or {}
        return Completion(text=choice["message"].get("content") or "",
                          prompt_tokens=usage.get("prompt_tokens", 0), completion_tokens=usage.get("completion_tokens", 0),
                          finish_reason=choice.get("finish_reason"), logprobs=_logprobs(choice), seconds=seconds)

    async def complete(self, request: Request) -> Completion:
        return await asyncio.to_thread(self._complete_sync, request)

    async def aclose(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close() if hasattr(self._llm, "close") else None
                self._llm = None


def _logprobs(choice) -> list[TokenLogprob] | None:
    lp = choice.get("logprobs")
    content = (lp or {}).get("content") if isinstance(lp, dict) else None
    if not content:
        return None
    # llama.cpp hands back numpy floats; plain floats keep the cache JSON-serialisable.
    return [TokenLogprob(t["token"], float(t["logprob"]),
                         [(a["token"], float(a["logprob"])) for a in t.get("top_logprobs") or []])
            for t in content]


def offline_backend(name: str, **options) -> LlamaCppBackend:
    """`offline:NAME`: a catalogued model from PyPI packages, joined once and verified, served by llama.cpp."""
    from rdistill.models.catalog import get_model, model_path

    get_model(name)  # unknown names fail here with a did-you-mean, before any file work
    backend = LlamaCppBackend(model_path(name), model_name=name, **options)
    backend.provider = "offline"
    return backend
