"""Progress of a generation run, as plain numbers handed to a callback (the CLI draws them as a bar)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Progress:
    done: int  # problems finished in this run
    total: int  # problems this run has to do (already-finished ones are not counted)
    traces_written: int
    calls: int  # teacher calls that reached the model (cache hits not counted)
    cache_hits: int
    cost_usd: float
    elapsed_s: float

    @property
    def rate(self) -> float:
        """Problems per second so far."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


ProgressCallback = Callable[[Progress], None]


class ProgressTracker:
    def __init__(self, total: int, ledger, callback: ProgressCallback | None):
        self.total, self.ledger, self.callback = total, ledger, callback
        self.done = self.traces_written = 0
        self.started = time.perf_counter()
        self._calls_before, self._hits_before, self._cost_before = _totals(ledger)

    def snapshot(self) -> Progress:
        calls, hits, cost = _totals(self.ledger)
        return Progress(self.done, self.total, self.traces_written, calls - self._calls_before,
                        hits - self._hits_before, cost - self._cost_before, time.perf_counter() - self.started)

    def problem_done(self, traces_written: int) -> None:
        self.done += 1
        self.traces_written += traces_written
        self.report()

    def report(self) -> None:
        if self.callback is not None:
            self.callback(self.snapshot())


def _totals(ledger) -> tuple[int, int, float]:
    models = ledger.summary()["models"].values()
    return (sum(m["calls"] for m in models), sum(m["cache_hits"] for m in models),
            sum(m["cost_usd"] for m in models))
