"""The one teacher interface: chat messages in, one sampled completion out.

A backend implements a single coroutine, `complete(request)`. Everything that is the same for every backend —
concurrency, retries, caching, the cost ledger, the budget — lives in `TeacherClient` (client.py), so a new
backend stays a small file (as in simonw/llm and lm-evaluation-harness's TemplateAPI).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from rdistill.errors import InputError, RdistillError


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None
    top_logprobs: int = 0  # >0 asks for per-token logprobs with that many alternatives (for logit KD)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


def validate_sampling(temperature: float | None, top_p: float, max_tokens: int) -> None:
    """The checks every stage that samples applies to its options, each naming the field."""
    if temperature is not None and temperature < 0:
        raise InputError(f"must be >= 0, got {temperature}", field="temperature")
    if not 0 < top_p <= 1:
        raise InputError(f"must be in (0, 1], got {top_p}", field="top_p")
    if max_tokens < 1:
        raise InputError(f"must be >= 1, got {max_tokens}", field="max_tokens")


@dataclass(frozen=True)
class Request:
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs; role in system/user/assistant
    params: SamplingParams = SamplingParams()
    sample_index: int = 0  # the k-th sample of the same prompt: its own cache entry and its own seed

    @staticmethod
    def chat(user: str, *, system: str | None = None, params: SamplingParams | None = None,
             sample_index: int = 0, history: Sequence[tuple[str, str]] = ()) -> "Request":
        msgs: list[tuple[str, str]] = []
        if system:
            msgs.append(("system", system))
        msgs.extend(history)
        msgs.append(("user", user))
        return Request(tuple(msgs), params or SamplingParams(), sample_index)

    @property
    def effective_seed(self) -> int | None:
        """Distinct, reproducible seeds per sample, so N samples of one prompt differ but reruns agree."""
        if self.params.seed is None:
            return None
        return self.params.seed + self.sample_index

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def prompt_chars(self) -> int:
        return sum(len(c) for _, c in self.messages)

    def cache_key(self, provider: str, model: str) -> str:
        """Content address: provider, model, messages, sampling parameters and sample index — never a secret
        and never the server address, so the same call to the same model hits the cache wherever it is served."""
        payload = {"provider": provider, "model": model, "messages": self.messages,
                   "params": self.params.to_dict(), "sample_index": self.sample_index}
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)
    # The vocabulary ids of `token` and of each `top` entry, where the server says (llama-server does): logit KD
    # trains on ids, and token text alone is ambiguous (byte pieces of one character, the same text twice).
    token_id: int | None = None
    top_ids: list[int] | None = None


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None
    seconds: float = 0.0
    cached: bool = False
    cost_usd: float = 0.0
    # Prompt tokens the server took from its KV cache instead of computing (a shared system prompt a slot still
    # holds); None where the backend does not say.
    cached_prompt_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.logprobs is not None:
            d["logprobs"] = [{"token": t.token, "logprob": t.logprob, "top": [list(x) for x in t.top],
                              **({"id": t.token_id, "top_ids": t.top_ids} if t.token_id is not None else {})}
                             for t in self.logprobs]
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Completion":
        lp = d.get("logprobs")
        logprobs = None
        if lp is not None:
            logprobs = [TokenLogprob(t["token"], t["logprob"], [tuple(x) for x in t.get("top", [])], t.get("id"),
                                     t.get("top_ids")) for t in lp]
        return Completion(text=d["text"], prompt_tokens=d.get("prompt_tokens", 0),
                          completion_tokens=d.get("completion_tokens", 0), finish_reason=d.get("finish_reason"),
                          logprobs=logprobs, seconds=d.get("seconds", 0.0), cached=d.get("cached", False),
                          cached_prompt_tokens=d.get("cached_prompt_tokens"),
                          cost_usd=d.get("cost_usd", 0.0))


@runtime_checkable
class Backend(Protocol):
    """What every teacher backend provides."""

    provider: str  # "openai", "anthropic", "llamacpp", "hf", ...
    model: str  # the model name as the cache and ledger know it
    local: bool  # local models cost $0 and are limited by compute, not by an API
    default_concurrency: int

    async def complete(self, request: Request) -> Completion: ...

    async def aclose(self) -> None: ...


class TeacherError(RdistillError):
    """A teacher call failed for good (after retries, or on a non-retryable error)."""


class TransientError(Exception):
    """A failure worth retrying: 429, 5xx, timeouts, dropped connections. `retry_after` in seconds if known."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class BudgetExceeded(RdistillError):
    """Sending the next call could cross the budget: the run stops before spending it."""
