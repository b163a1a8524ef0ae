"""`TeacherClient`: what every backend shares — cache, bounded concurrency, retries, timeouts, rate limits,
the cost ledger and the budget. Backends only implement `complete(request)`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Awaitable, Callable, Sequence, TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from rdistill.syncrun import run_sync
from rdistill.teachers.base import Backend, BudgetExceeded, Completion, Request, TeacherError, TransientError
from rdistill.teachers.cache import ResponseCache
from rdistill.teachers.ledger import Ledger, worst_case_cost
from rdistill.teachers.prices import Price, load_prices, price_for
from rdistill.teachers.ratelimit import TokenBucket

log = logging.getLogger(__name__)

ResultCallback = Callable[[int, Completion | BaseException], Awaitable[None] | None]
T = TypeVar("T")


class _Wait:
    """Exponential backoff with full jitter, but never shorter than a server's Retry-After."""

    def __init__(self, max_wait: float):
        self._jitter = wait_random_exponential(multiplier=0.5, max=max_wait)
        self.max_wait = max_wait

    def __call__(self, retry_state) -> float:
        wait = self._jitter(retry_state)
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after:
            wait = max(wait, min(exc.retry_after, self.max_wait))
        return wait


class TeacherClient:
    def __init__(self, backend: Backend, *, cache: ResponseCache | None = None, ledger: Ledger | None = None,
                 concurrency: int | None = None, max_attempts: int = 6, timeout_s: float = 300.0,
                 max_backoff_s: float = 30.0, rpm: float | None = None, tpm: float | None = None,
                 prices: dict[str, Price] | None = None):
        self.backend = backend
        self.cache = cache
        self.ledger = ledger or Ledger()
        self.concurrency = concurrency or backend.default_concurrency
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.max_backoff_s = max_backoff_s
        self._rpm, self._tpm = rpm, tpm
        self.price = None if backend.local else price_for(prices or load_prices(), backend.provider, backend.model)
        if not backend.local and self.price is None:
            log.warning("no price known for %s:%s; its cost is recorded as $0 (pass a price table to fix)",
                        backend.provider, backend.model)
        self._guard = threading.Lock()
        self._loop_state: dict[int, tuple[asyncio.Semaphore, TokenBucket | None, TokenBucket | None]] = {}

    @property
    def name(self) -> str:
        return f"{self.backend.provider}:{self.backend.model}"

    def _state(self):
        # asyncio primitives belong to one event loop; keep one set per loop so the sync wrapper can be reused.
        loop = asyncio.get_running_loop()
        with self._guard:
            if id(loop) not in self._loop_state:
                self._loop_state[id(loop)] = (
                    asyncio.Semaphore(self.concurrency),
                    TokenBucket(self._rpm) if self._rpm else None,
                    TokenBucket(self._tpm) if self._tpm else None,
                )
            return self._loop_state[id(loop)]

    async def acomplete(self, request: Request) -> Completion:
        hit = self._cached(request)
        if hit is not None:
            return hit
        semaphore, rpm, tpm = self._state()
        reservation = self.ledger.reserve(self.name, worst_case_cost(self.price, request))
        try:
            async with semaphore:
                if rpm:
                    await rpm.acquire(1)
                if tpm:
                    await tpm.acquire(request.prompt_chars() / 4 + request.params.max_tokens)
                completion = await self._call_with_retries(lambda: self.backend.complete(request))
        finally:
            self.ledger.release(reservation)
        self._account(request, completion)
        return completion

    def _cached(self, request: Request) -> Completion | None:
        if self.cache is None:
            return None
        hit = self.cache.get(request.cache_key(self.backend.provider, self.backend.model))
        if hit is not None:
            self.ledger.record_cache_hit(self.name)
        return hit

    def _account(self, request: Request, completion: Completion) -> None:
        completion.cost_usd = self.price.cost(completion.prompt_tokens, completion.completion_tokens) if self.price else 0.0
        self.ledger.record_call(self.name, prompt_tokens=completion.prompt_tokens,
                                completion_tokens=completion.completion_tokens, cost_usd=completion.cost_usd,
                                seconds=completion.seconds, priced=self.price is not None or self.backend.local)
        if self.cache is not None:
            # Cached as soon as it arrives: a paid answer is never lost, even if the run dies right after.
            key = request.cache_key(self.backend.provider, self.backend.model)
            self.cache.put(key, self.backend.provider, self.backend.model, completion)

    async def _call_with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        def before_sleep(state):
            self.ledger.record_retry(self.name)
            log.info("retrying %s after %s (attempt %d)", self.name, state.outcome.exception(), state.attempt_number)

        retrying = AsyncRetrying(
            retry=retry_if_exception_type((TransientError, asyncio.TimeoutError)),
            wait=_Wait(self.max_backoff_s), stop=stop_after_attempt(self.max_attempts),
            before_sleep=before_sleep, reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    start = time.perf_counter()
                    result = await asyncio.wait_for(call(), timeout=self.timeout_s)
                    for completion in result if isinstance(result, list) else [result]:
                        completion.seconds = completion.seconds or (time.perf_counter() - start)
                    return result
        except (TransientError, asyncio.TimeoutError) as e:
            self.ledger.record_failure(self.name)
            kind = "timed out" if isinstance(e, asyncio.TimeoutError) else str(e)
            raise TeacherError(f"{self.name}: gave up after {self.max_attempts} attempts: {kind}") from e
        raise AssertionError("unreachable")  # pragma: no cover

    async def agenerate(self, requests: Sequence[Request], on_result: ResultCallback | None = None,
                        ) -> list[Completion | BaseException]:
        """Run all requests concurrently (bounded). Each result — a Completion or the exception — is handed to
        `on_result(index, result)` as soon as it is ready, so callers can write it out at once. Once the budget
        is reached, the remaining requests are not sent. A backend with `complete_batch` gets the uncached
        requests in batches of its `batch_size` instead of one call each."""
        if hasattr(self.backend, "complete_batch"):
            return await self._agenerate_batched(requests, on_result)
        results: list[Completion | BaseException] = [None] * len(requests)  # type: ignore[list-item]
        stop = asyncio.Event()

        async def one(i: int, req: Request) -> None:
            if stop.is_set():
                results[i] = BudgetExceeded("not sent: the budget was reached earlier in this run")
            else:
                try:
                    results[i] = await self.acomplete(req)
                except BudgetExceeded as e:
                    stop.set()
                    results[i] = e
                except (TeacherError, Exception) as e:  # noqa: BLE001 - handed to the caller per request
                    results[i] = e
            if on_result is not None:
                maybe = on_result(i, results[i])
                if asyncio.iscoroutine(maybe):
                    await maybe

        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
        return results

    async def _agenerate_batched(self, requests: Sequence[Request], on_result: ResultCallback | None,
                                 ) -> list[Completion | BaseException]:
        """`agenerate` for batching backends: cache lookups, budget reservations and ledger entries stay per
        request; only the backend call is shared by up to batch_size requests."""
        results: list[Completion | BaseException] = [None] * len(requests)  # type: ignore[list-item]
        stop = asyncio.Event()

        async def deliver(i: int, result: Completion | BaseException) -> None:
            results[i] = result
            if on_result is not None:
                maybe = on_result(i, result)
                if asyncio.iscoroutine(maybe):
                    await maybe

        async def run_batch(indices: list[int]) -> None:
            semaphore, rpm, tpm = self._state()
            async with semaphore:
                sendable, reservations = [], []
                for i in indices:
                    try:
                        if stop.is_set():
                            raise BudgetExceeded("not sent: the budget was reached earlier in this run")
                        reservations.append(self.ledger.reserve(self.name, worst_case_cost(self.price, requests[i])))
                        sendable.append(i)
                    except BudgetExceeded as e:
                        stop.set()
                        await deliver(i, e)
                if not sendable:
                    return
                batch = [requests[i] for i in sendable]
                try:
                    if rpm:
                        await rpm.acquire(1)
                    if tpm:
                        await tpm.acquire(sum(r.prompt_chars() / 4 + r.params.max_tokens for r in batch))
                    completions = await self._call_with_retries(lambda: self.backend.complete_batch(batch))
                    if len(completions) != len(batch):
                        raise TeacherError(f"{self.name}: asked for {len(batch)} completions, got {len(completions)}")
                except Exception as e:  # noqa: BLE001 - handed to the caller per request
                    for i in sendable:
                        await deliver(i, e)
                    return
                finally:
                    for reservation in reservations:
                        self.ledger.release(reservation)
            for i, completion in zip(sendable, completions):
                self._account(requests[i], completion)
                await deliver(i, completion)

        uncached = []
        for i, request in enumerate(requests):
            hit = self._cached(request)
            if hit is None:
                uncached.append(i)
            else:
                await deliver(i, hit)
        size = max(1, getattr(self.backend, "batch_size", 1))
        await asyncio.gather(*(run_batch(uncached[k:k + size]) for k in range(0, len(uncached), size)))
        return results

    def generate(self, requests: Sequence[Request], on_result: ResultCallback | None = None,
                 ) -> list[Completion | BaseException]:
        """Synchronous wrapper around `agenerate` (runs its own event loop in a thread if one is running)."""
        return run_sync(lambda: self._run_and_close(requests, on_result))

    async def _run_and_close(self, requests, on_result):
        try:
            return await self.agenerate(requests, on_result)
        finally:
            self._loop_state.pop(id(asyncio.get_running_loop()), None)
            # This loop ends with this call, so per-loop HTTP clients close now (a local model stays loaded).
            close_loop_client = getattr(self.backend, "close_loop_client", None)
            if close_loop_client is not None:
                await close_loop_client()

    def complete(self, request: Request) -> Completion:
        result = self.generate([request])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    async def aclose(self) -> None:
        await self.backend.aclose()
