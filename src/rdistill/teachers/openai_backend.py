"""`openai:MODEL` and `openai:MODEL@BASE_URL`: OpenAI and every OpenAI-compatible server (vLLM, llama.cpp's
llama-server, Ollama, SGLang) through the official `openai` SDK.

The SDK's own retries are switched off (max_retries=0): `TeacherClient` retries, so that the ledger counts
every retry and the backoff is the same for every backend.
"""

from __future__ import annotations

import os
import time

from rdistill.errors import RdistillError
from rdistill.teachers.base import Completion, Request, TokenLogprob, TransientError
from rdistill.teachers.http_base import SDKBackend, retry_after_seconds


class OpenAIBackend(SDKBackend):
    provider = "openai"
    default_concurrency = 16

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 600.0):
        try:
            import openai  # noqa: F401
        except ImportError:
            raise RdistillError("the openai backend needs the openai SDK: pip install 'rdistill[openai]'") from None
        super().__init__()
        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        # A local OpenAI-compatible server needs no key; the SDK insists on one, so give it a dummy.
        self._api_key = api_key or os.environ.get(api_key_env) or ("not-needed" if self.base_url else None)
        if self._api_key is None:
            raise RdistillError(f"openai:{model} needs an API key: set {api_key_env} (or use openai:{model}@BASE_URL "
                                "for a local OpenAI-compatible server)")
        self._timeout = timeout_s

    def _make_client(self):
        import openai

        return openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, max_retries=0, timeout=self._timeout)

    async def complete(self, request: Request) -> Completion:
        import openai

        p = request.params
        kwargs: dict = dict(model=self.model, messages=request.message_dicts(), temperature=p.temperature,
                            top_p=p.top_p, max_tokens=p.max_tokens, n=1)
        if p.stop:
            kwargs["stop"] = list(p.stop)
        if request.effective_seed is not None:
            kwargs["seed"] = request.effective_seed
        if p.top_logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = p.top_logprobs
        start = time.perf_counter()
        try:
            resp = await self._client().chat.completions.create(**kwargs)
        except openai.RateLimitError as e:
            raise TransientError(f"rate limited (429): {e.message}", status=429, retry_after=retry_after_seconds(e)) from e
        except openai.InternalServerError as e:
            raise TransientError(f"server error ({e.status_code})", status=e.status_code) from e
        except openai.APITimeoutError as e:
            raise TransientError("request timed out") from e
        except openai.APIConnectionError as e:
            raise TransientError(f"connection failed: {e}") from e
        except openai.APIStatusError as e:
            if e.status_code in (408, 409, 425) or e.status_code >= 500:
                raise TransientError(f"HTTP {e.status_code}", status=e.status_code) from e
            raise RdistillError(f"openai:{self.model}: HTTP {e.status_code}: {e.message}") from None
        seconds = time.perf_counter() - start
        if not resp.choices:
            raise TransientError("empty response (no choices)")
        choice = resp.choices[0]
        usage = resp.usage
        return Completion(
            text=choice.message.content or "",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            finish_reason=choice.finish_reason,
            logprobs=_logprobs(choice),
            seconds=seconds,
        )


def _logprobs(choice) -> list[TokenLogprob] | None:
    lp = getattr(choice, "logprobs", None)
    content = getattr(lp, "content", None) if lp is not None else None
    if not content:
        return None
    return [TokenLogprob(t.token, t.logprob, [(a.token, a.logprob) for a in (t.top_logprobs or [])]) for t in content]
