"""The token and dollar ledger, with a budget that is checked before a call is sent, not after.

Every in-flight call reserves its worst-case cost (a prompt-token bound + max_tokens); the reservation is replaced by
the real cost when the answer arrives. A call whose reservation would cross the budget is refused with
`BudgetExceeded`, so a run never spends past `--budget-usd`, even with many calls in flight.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rdistill.teachers.base import BudgetExceeded, Request
from rdistill.teachers.prices import Price


@dataclass
class ModelTotals:
    calls: int = 0  # calls that reached the backend and answered
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0  # summed wall time of answered calls (local models: their compute time)
    priced: bool = True


@dataclass
class Ledger:
    budget_usd: float | None = None
    models: dict[str, ModelTotals] = field(default_factory=dict)
    reserved_usd: float = 0.0
    refused: int = 0

    def __post_init__(self):
        self._lock = threading.Lock()

    def _totals(self, model: str) -> ModelTotals:
        return self.models.setdefault(model, ModelTotals())

    @property
    def spent_usd(self) -> float:
        return sum(t.cost_usd for t in self.models.values())

    def reserve(self, model: str, worst_case_usd: float) -> float:
        with self._lock:
            if self.budget_usd is not None and self.spent_usd + self.reserved_usd + worst_case_usd > self.budget_usd:
                self.refused += 1
                raise BudgetExceeded(
                    f"budget of ${self.budget_usd:.4f} reached: ${self.spent_usd:.4f} spent, "
                    f"${self.reserved_usd:.4f} in flight, next call to {model} could cost ${worst_case_usd:.4f}. "
                    "Everything already answered is cached; raise --budget-usd to continue.")
            self.reserved_usd += worst_case_usd
            return worst_case_usd

    def release(self, reservation: float) -> None:
        with self._lock:
            self.reserved_usd = max(0.0, self.reserved_usd - reservation)

    def record_call(self, model: str, *, prompt_tokens: int, completion_tokens: int, cost_usd: float,
                    seconds: float, priced: bool) -> None:
        with self._lock:
            t = self._totals(model)
            t.calls += 1
            t.prompt_tokens += prompt_tokens
            t.completion_tokens += completion_tokens
            t.cost_usd += cost_usd
            t.seconds += seconds
            t.priced = t.priced and priced

    def record_cache_hit(self, model: str) -> None:
        with self._lock:
            self._totals(model).cache_hits += 1

    def record_retry(self, model: str) -> None:
        with self._lock:
            self._totals(model).retries += 1

    def record_failure(self, model: str) -> None:
        with self._lock:
            self._totals(model).failures += 1

    def summary(self) -> dict:
        with self._lock:
            return {
                "budget_usd": self.budget_usd,
                "spent_usd": round(self.spent_usd, 6),
                "refused_calls": self.refused,
                "models": {m: asdict(t) for m, t in self.models.items()},
            }

    def save(self, path: str | Path) -> None:
        from rdistill.jsonl import atomic_writer

        with atomic_writer(path) as fh:
            json.dump(self.summary(), fh, indent=2)


# A chat format adds tokens beyond the message text: role markers per message, and some local templates insert a
# default system prompt when none is given (SmolLM2's and Qwen2.5's are 20-35 tokens).
PER_MESSAGE_TOKENS = 8
TEMPLATE_TOKENS = 64


def prompt_token_bound(request: Request) -> int:
    """An upper bound on a request's prompt tokens, so that a reservation is never smaller than the real cost.
    Every token of a byte-level tokenizer (GPT, Llama 3, Qwen, SmolLM) covers at least one byte of text,
    so UTF-8 bytes bound the text's tokens in any language; characters do not (a CJK character or an emoji can
    be several tokens), and characters / 3 fails as soon as a template adds a default system prompt."""
    text_bytes = sum(len(content.encode("utf-8")) for _, content in request.messages)
    return text_bytes + PER_MESSAGE_TOKENS * len(request.messages) + TEMPLATE_TOKENS


def worst_case_cost(price: Price | None, request: Request) -> float:
    """The most a request can cost: its prompt bound plus every token it may generate."""
    if price is None:
        return 0.0
    return price.cost(prompt_token_bound(request), request.params.max_tokens)
