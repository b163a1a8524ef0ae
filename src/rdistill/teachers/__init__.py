"""Teachers: every backend behind one interface (base.py), chosen by a string (registry.py), with a shared
client (client.py) that owns concurrency, retries, the response cache and the cost ledger."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rdistill.teachers.base import BudgetExceeded, Completion, Request, SamplingParams, TeacherError
from rdistill.teachers.client import TeacherClient

__all__ = ["BudgetExceeded", "Completion", "Request", "SamplingParams", "TeacherClient", "TeacherError",
           "default_cache_path", "make_teacher"]


def default_cache_path() -> Path:
    root = os.environ.get("RDISTILL_CACHE") or Path.home() / ".cache" / "rdistill"
    return Path(root) / "responses.sqlite"


def make_teacher(spec: str, *, cache: str | Path | None | bool = True, budget_usd: float | None = None,
                 concurrency: int | None = None, prices: str | Path | None = None, rpm: float | None = None,
                 tpm: float | None = None, timeout_s: float = 300.0, max_attempts: int = 6,
                 backend_options: dict[str, Any] | None = None) -> TeacherClient:
    """A ready client for `spec` (e.g. 'openai:gpt-4o-mini'). `cache=True` uses the default cache file,
    a path uses that file, False/None disables caching."""
    from rdistill.teachers.cache import ResponseCache
    from rdistill.teachers.ledger import Ledger
    from rdistill.teachers.prices import load_prices
    from rdistill.teachers.registry import load_backend

    backend = load_backend(spec, **(backend_options or {}))
    cache_obj = None
    if cache:
        cache_obj = ResponseCache(default_cache_path() if cache is True else Path(cache))
    return TeacherClient(backend, cache=cache_obj, ledger=Ledger(budget_usd=budget_usd), concurrency=concurrency,
                         prices=load_prices(prices), rpm=rpm, tpm=tpm, timeout_s=timeout_s, max_attempts=max_attempts)
