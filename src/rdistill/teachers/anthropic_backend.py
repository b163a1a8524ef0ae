"""`anthropic:MODEL` (and `anthropic:MODEL@BASE_URL`) through the official `anthropic` SDK's Messages API.

As for OpenAI, the SDK's retries are off and `TeacherClient` retries, so the ledger sees every retry.
The Messages API has no seed and no logprobs: `sample_index` still gives each sample its own cache entry.
"""

from __future__ import annotations

import os
import time

from rdistill.errors import RdistillError
from rdistill.teachers.base import Completion, Request, TransientError
from rdistill.teachers.http_base import SDKBackend, retry_after_seconds


class AnthropicBackend(SDKBackend):
    provider = "anthropic"
    default_concurrency = 8

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 api_key_env: str = "ANTHROPIC_API_KEY", timeout_s: float = 600.0):
        try:
            import anthropic  # noqa: F401
        except ImportError:
            raise RdistillError("the anthropic backend needs the anthropic SDK: pip install 'rdistill[anthropic]'") from None
        super().__init__()
        self.model = model
        self.base_url = base_url or os.environ.get("ANTHROPIC_BASE_URL")
        self._api_key = api_key or os.environ.get(api_key_env)
        if not self._api_key:
            raise RdistillError(f"anthropic:{model} needs an API key: set {api_key_env}")
        self._timeout = timeout_s

    def _make_client(self):
        import anthropic

        return anthropic.AsyncAnthropic(api_key=self._api_key, base_url=self.base_url, max_retries=0, timeout=self._timeout)

    async def complete(self, request: Request) -> Completion:
        import anthropic

        p = request.params
        system = "\n\n".join(c for r, c in request.messages if r == "system")
        messages = [{"role": r, "content": c} for r, c in request.messages if r != "system"]
        # The SDK dropped temperature/top_p from create()'s signature in 1.0 (its migration guide: send them in
        # extra_body); the API still takes them, and extra_body works with the older SDKs too.
        sampling: dict = {"temperature": p.temperature}
        if p.top_p < 1.0:  # several Claude models refuse temperature and top_p together; send top_p only if set
            sampling["top_p"] = p.top_p
        kwargs: dict = dict(model=self.model, max_tokens=p.max_tokens, messages=messages, extra_body=sampling)
        if system:
            kwargs["system"] = system
        if p.stop:
            kwargs["stop_sequences"] = list(p.stop)
        start = time.perf_counter()
        try:
            resp = await self._client().messages.create(**kwargs)
        except anthropic.RateLimitError as e:
            raise TransientError("rate limited (429)", status=429, retry_after=retry_after_seconds(e)) from e
        except anthropic.InternalServerError as e:
            raise TransientError(f"server error ({e.status_code})", status=e.status_code) from e
        except anthropic.APITimeoutError as e:
            raise TransientError("request timed out") from e
        except anthropic.APIConnectionError as e:
            raise TransientError(f"connection failed: {e}") from e
        except anthropic.APIStatusError as e:
            if e.status_code in (408, 409, 425, 529) or e.status_code >= 500:
                raise TransientError(f"HTTP {e.status_code}", status=e.status_code) from e
            raise RdistillError(f"anthropic:{self.model}: HTTP {e.status_code}: {e.message}") from None
        text = "".join(block.text for block in resp.content if getattr(block, "type", "") == "text")
        return Completion(text=text, prompt_tokens=resp.usage.input_tokens, completion_tokens=resp.usage.output_tokens,
                          finish_reason=resp.stop_reason, seconds=time.perf_counter() - start)


