"""Dollar prices per million tokens: a dated table shipped in prices.json, overridden by a JSON or YAML file.

Prices change; users point `--prices FILE` (or RDISTILL_PRICES) at their own table, either a plain mapping of
'provider:model' to {input, output} or the shipped file's form with its date (`as_of`). A model that matches no
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


PRICES_FILE = Path(__file__).with_name("prices.json")  # the shipped table: list prices and the date they were taken


@dataclass(frozen=True)
class PriceTable:
    prices: dict[str, Price]
    as_of: str | None  # the date the prices were taken (None: the user's table does not say)
    source: str  # where they come from, for the report


def _read_table(path: Path) -> tuple[dict, str | None, str | None]:
    """(entries, as_of, note) of a price file: {"as_of", "source", "usd_per_million_tokens": {...}} or a plain
    mapping of 'provider:model' to {input, output}."""
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
    if "usd_per_million_tokens" in table:
        entries = table["usd_per_million_tokens"]
        if not isinstance(entries, dict):
            raise InputError("expected a mapping of 'provider:model' to {input, output}", path=path,
                             field="usd_per_million_tokens")
        as_of = table.get("as_of")
        return entries, str(as_of) if as_of is not None else None, table.get("source")
    return table, None, None


def _parse_entries(entries: dict, path: Path) -> dict[str, Price]:
    prices = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict) or not {"input", "output"} <= set(entry):
            raise InputError("expected {input: USD per 1M tokens, output: USD per 1M tokens}", path=path, field=name)
        try:
            prices[name] = Price(float(entry["input"]), float(entry["output"]))
        except (TypeError, ValueError):
            raise InputError("prices must be numbers", path=path, field=name) from None
    return prices


def price_table(path: str | Path | None = None) -> PriceTable:
    """The shipped table (dated), with the entries of `path` (or $RDISTILL_PRICES) on top of it."""
    entries, shipped_as_of, _ = _read_table(PRICES_FILE)
    prices = _parse_entries(entries, PRICES_FILE)
    path = path or os.environ.get("RDISTILL_PRICES")
    if not path:
        return PriceTable(prices, shipped_as_of, f"rdistill's list prices as of {shipped_as_of}")
    path = Path(path)
    entries, as_of, _ = _read_table(path)
    prices.update(_parse_entries(entries, path))
    dated = f"as of {as_of}" if as_of else "undated"
    return PriceTable(prices, as_of, f"{path} ({dated}), over rdistill's list prices as of {shipped_as_of}")


def load_prices(path: str | Path | None = None) -> dict[str, Price]:
    """USD per 1M tokens by 'provider:model': the shipped table with `path` (or $RDISTILL_PRICES) over it."""
    return price_table(path).prices


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
