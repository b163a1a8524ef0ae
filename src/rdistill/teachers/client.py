"""`TeacherClient`: what every backend shares — cache, bounded concurrency, retries, timeouts, rate limits,
the cost ledger and the budget. Backends only implement `complete(request)`.

Two things a backend can declare about itself:
- `stall_timeout_s`: it fails a request itself once no new token arrives for that long (llamaserver streams), so the
  client sets no total time limit on its calls: a slow request that is still producing tokens is not stuck.
- `adaptive_concurrency = True`: its requests share one machine (a local llama-server's slots), so the number in
  flight follows the measured speed (`ConcurrencyController`) instead of staying at the ceiling.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
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


class Gate:
    """A semaphore whose size can change while requests are in flight (asyncio.Semaphore's cannot). Lowering it
    lets the requests in flight finish; new ones wait until fewer than `limit` are in flight."""

    def __init__(self, limit: int):
        self.limit, self.in_flight = max(1, limit), 0
        self._waiters: deque[asyncio.Future] = deque()

    async def __aenter__(self) -> "Gate":
        while self.in_flight >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                else:
                    self._wake()  # it had been woken: pass its turn on
                raise
        self.in_flight += 1
        return self

    async def __aexit__(self, *exc) -> None:
        self.in_flight -= 1
        self._wake()

    def set_limit(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._wake()

    def _wake(self) -> None:
        # A woken waiter checks again (another task may have taken the place meanwhile) and queues anew if so.
        free = self.limit - self.in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1


@dataclass
class ConcurrencyChange:
    at_s: float  # seconds since the client's first request on this loop
    old: int
    new: int
    reason: str


class ConcurrencyController:
    """How many requests to keep in flight towards one machine, from its measured speed (AIMD-like).

    A window closes every `max(4, limit)` finished requests: its speed is the completion tokens those requests
    produced per wall second. The rule:
    - Slowdown, halve (multiplicative decrease): a request stalled or timed out, or the window's tokens/s fell below
      half the reference measured at about this concurrency, i.e. each request's time per token doubled (something
      else took the CPU). The reference restarts after the change, so a lasting slowdown halves once, not forever.
    - Hill climb, +1 (additive increase): below the ceiling, one more in flight is tried; it is kept, and the next
      one tried, only if tokens/s rose by at least 5%. Otherwise the step is undone and the limit holds for HOLD
      windows before the next try: once the cores are saturated, more requests in flight only add latency.
    The first window after a change (and the first of all, which holds the server's start) only settles: requests
    sent at the old limit are still finishing in it, so its speed decides nothing.
    Never below 1, never above the ceiling (the server's slots, or the concurrency asked for). Starting at the
    ceiling, an unloaded machine runs exactly as without the controller.
    """

    MIN_WINDOW, GAIN, SLOWDOWN, HOLD = 4, 1.05, 0.5, 5

    def __init__(self, ceiling: int, name: str = "", clock: Callable[[], float] = time.monotonic,
                 changes: list[ConcurrencyChange] | None = None):
        self.ceiling, self.limit, self.name, self.clock = max(1, ceiling), max(1, ceiling), name, clock
        self.changes = changes if changes is not None else []
        self._started = clock()
        self._new_window()
        self._reference: float | None = None  # tokens/s at about the current limit (EWMA over windows)
        self._before_step: float | None = None  # tokens/s of the window before a +1 try
        self._hold = 0
        self._settling = True

    def _new_window(self) -> None:
        self._window_start, self._window_requests, self._window_tokens = self.clock(), 0, 0
        self._decreased_in_window = False

    def set_ceiling(self, ceiling: int) -> int:
        self.ceiling = max(1, ceiling)
        if self.limit > self.ceiling:
            self._change(self.ceiling, "ceiling lowered")
        return self.limit

    def observe(self, completion_tokens: int) -> int:
        """A request finished; returns the limit to use now."""
        self._window_requests += 1
        self._window_tokens += completion_tokens
        if self._window_requests < max(self.MIN_WINDOW, self.limit):
            return self.limit
        rate = self._window_tokens / max(self.clock() - self._window_start, 1e-6)
        self._new_window()
        if self._settling:
            self._settling = False
            return self.limit
        if self._reference is not None and rate < self.SLOWDOWN * self._reference:
            self._halve(f"{rate:.1f} tokens/s, under half of {self._reference:.1f} before")
            return self.limit
        self._reference = rate if self._reference is None else 0.5 * (self._reference + rate)
        if self._before_step is not None:  # the window after a +1 try: keep it only if it paid
            before, self._before_step = self._before_step, None
            if rate < self.GAIN * before:
                self._step(-1, f"{rate:.1f} tokens/s, not 5% over {before:.1f}: undone")
                self._hold = self.HOLD
                return self.limit
        elif self._hold > 0:
            self._hold -= 1
            return self.limit
        if self.limit < self.ceiling:
            self._step(+1, f"{rate:.1f} tokens/s: trying one more")
            self._before_step = rate
        return self.limit

    def failed(self) -> int:
        """A request stalled or timed out: halve, at most once per window (a slowdown fails many at once)."""
        if not self._decreased_in_window:
            self._halve("a request stalled or timed out")
            self._new_window()
            self._decreased_in_window = True
        return self.limit

    def _halve(self, reason: str) -> None:
        self._change(max(1, self.limit // 2), reason)
        self._reference = None  # measured again at the new limit
        self._before_step, self._hold = None, 0

    def _step(self, delta: int, reason: str) -> None:
        self._change(min(self.ceiling, max(1, self.limit + delta)), reason)

    def _change(self, new: int, reason: str) -> None:
        if new == self.limit:
            return
        change = ConcurrencyChange(round(self.clock() - self._started, 1), self.limit, new, reason)
        self.changes.append(change)
        log.info("%s: requests in flight %d -> %d (%s)", self.name, change.old, change.new, reason)
        self.limit, self._settling = new, True


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
        self._loop_state: dict[int, tuple[Gate, TokenBucket | None, TokenBucket | None]] = {}
        self._controllers: dict[int, ConcurrencyController] = {}
        self.concurrency_changes: list[ConcurrencyChange] = []  # every change the controller made, in order
        self._cap: int | None = None  # a lower ceiling asked for by the caller (cap_concurrency)
        # A backend that fails stalled requests itself gets no total time limit here (see the module docstring).
        self.stall_timeout_s: float | None = getattr(backend, "stall_timeout_s", None)
        self.adaptive = bool(getattr(backend, "adaptive_concurrency", False))

    @property
    def name(self) -> str:
        return f"{self.backend.provider}:{self.backend.model}"

    def _ceiling(self) -> int:
        # Never more in flight than the server has slots: a request queued behind them makes no progress.
        ceiling = min(self.concurrency, getattr(self.backend, "slots", None) or self.concurrency)
        return max(1, min(ceiling, self._cap or ceiling))

    def _state(self):
        # asyncio primitives belong to one event loop; keep one set per loop so the sync wrapper can be reused.
        loop = asyncio.get_running_loop()
        with self._guard:
            if id(loop) not in self._loop_state:
                self._loop_state[id(loop)] = (
                    Gate(self._ceiling()),
                    TokenBucket(self._rpm) if self._rpm else None,
                    TokenBucket(self._tpm) if self._tpm else None,
                )
                if self.adaptive:
                    self._controllers[id(loop)] = ConcurrencyController(self._ceiling(), self.name,
                                                                        changes=self.concurrency_changes)
            return self._loop_state[id(loop)]

    def cap_concurrency(self, cap: int | None) -> None:
        """At most `cap` requests in flight from now on, on the running loop (None: back to the client's
        concurrency; an adaptive controller then climbs back by itself where that pays). For a second try of
        requests that failed under load, say."""
        self._cap = cap
        gate = self._state()[0]
        controller = self._controllers.get(id(asyncio.get_running_loop()))
        gate.set_limit(controller.set_ceiling(self._ceiling()) if controller else self._ceiling())

    def _adapt(self, completion: Completion | None) -> None:
        """Tell the adaptive controller about a finished (None: stalled or timed-out) request; apply its limit."""
        controller = self._controllers.get(id(asyncio.get_running_loop()))
        if controller is not None:
            limit = controller.observe(completion.completion_tokens) if completion else controller.failed()
            self._state()[0].set_limit(limit)

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
        self._adapt(completion)
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
            self._adapt(None)  # a stalled or timed-out request: the machine is overloaded

        retrying = AsyncRetrying(
            retry=retry_if_exception_type((TransientError, asyncio.TimeoutError)),
            wait=_Wait(self.max_backoff_s), stop=stop_after_attempt(self.max_attempts),
            before_sleep=before_sleep, reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    start = time.perf_counter()
                    # No total limit where the backend limits the time without progress itself.
                    timeout = None if self.stall_timeout_s else self.timeout_s
                    result = await asyncio.wait_for(call(), timeout=timeout)
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
