"""Dollar prices per million tokens, editable: defaults below, overridden by a JSON or YAML file.

Prices change; users point `--prices FILE` (or RDISTILL_PRICES) at their own table. A model that matches no
entry is priced at $0 and the ledger says so, rather than guessing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from rdistill.errors import InputError


@dataclass(frozen=True)
class Price:
    input_per_m: float
    output_per_m: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_m + completion_tokens * self.output_per_m) / 1e6


# USD per 1M tokens (input, output), list prices as published by the providers; edit with your own file.
DEFAULT_PRICES: dict[str, Price] = {
    "openai:gpt-4o": Price(2.50, 10.00),
    "openai:gpt-4o-mini": Price(0.15, 0.60),
    "openai:gpt-4.1": Price(2.00, 8.00),
    "openai:gpt-4.1-mini": Price(0.40, 1.60),
    "openai:gpt-4.1-nano": Price(0.10, 0.40),
    "openai:o3": Price(2.00, 8.00),
    "openai:o4-mini": Price(1.10, 4.40),
    "anthropic:claude-3-5-haiku-latest": Price(0.80, 4.00),
    "anthropic:claude-3-7-sonnet-latest": Price(3.00, 15.00),
    "anthropic:claude-sonnet-4-0": Price(3.00, 15.00),
    "anthropic:claude-opus-4-0": Price(15.00, 75.00),
}


def load_prices(path: str | Path | None = None) -> dict[str, Price]:
    prices = dict(DEFAULT_PRICES)
    path = path or os.environ.get("RDISTILL_PRICES")
    if not path:
        return prices
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read price table: {e.strerror}", path=path) from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            table = yaml.safe_load(text) or {}
        else:
            table = json.loads(text)
    except Exception as e:  # noqa: BLE001 - any parse error becomes one located line
        raise InputError(f"cannot parse price table: {e}", path=path) from None
    if not isinstance(table, dict):
        raise InputError("expected a mapping of 'provider:model' to {input, output}", path=path)
    for name, entry in table.items():
        if not isinstance(entry, dict) or not {"input", "output"} <= set(entry):
            raise InputError("expected {input: USD per 1M tokens, output: USD per 1M tokens}", path=path, field=name)
        try:
            prices[name] = Price(float(entry["input"]), float(entry["output"]))
        except (TypeError, ValueError):
            raise InputError("prices must be numbers", path=path, field=name) from None
    return prices


def price_for(prices: dict[str, Price], provider: str, model: str) -> Price | None:
    """Exact 'provider:model' first, then the longest listed prefix (dated snapshots like gpt-4o-2024-08-06)."""
    key = f"{provider}:{model}"
    if key in prices:
        return prices[key]
    best = None
    for name in prices:
        if key.startswith(name) and (best is None or len(name) > len(best)):
            best = name
    return prices[best] if best else None
