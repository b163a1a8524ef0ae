"""Requests-per-minute and tokens-per-minute limits as async token buckets."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """`rate_per_minute` units refill continuously; `acquire(n)` waits until n units are available."""

    def __init__(self, rate_per_minute: float):
        if rate_per_minute <= 0:
            raise ValueError("rate limit must be positive")
        self.capacity = float(rate_per_minute)
        self.tokens = float(rate_per_minute)
        self.per_second = rate_per_minute / 60.0
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self, amount: float = 1.0) -> None:
        amount = min(amount, self.capacity)  # a single huge request must still be able to go
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
                self.updated = now
                if self.tokens >= amount:
                    self.tokens -= amount
                    return
                await asyncio.sleep((amount - self.tokens) / self.per_second)
