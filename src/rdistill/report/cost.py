"""What the models cost: teacher calls from ledgers, and serving cost per 1K generated tokens.

Serving cost puts API and local models on one scale. An API model costs its list price (prices.py, or the
user's table) for the prompt and completion tokens it used in the evaluation, divided by the tokens it
generated. A local model costs the machine's hourly price divided by its measured throughput (generated tokens
per second of model time, prompt processing included). The hourly price is an assumption the report states.
"""

from __future__ import annotations

from rdistill.evaluate.runner import throughput

DEFAULT_HOURLY_USD = 1.00  # an assumed price for the machine that measured local throughput; --hourly-usd


def ledger_rows(ledger: dict, source: str) -> list[dict]:
    rows = []
    for model, totals in sorted(ledger.get("models", {}).items()):
        rows.append({"source": source, "model": model, "calls": totals.get("calls", 0),
                     "cache_hits": totals.get("cache_hits", 0), "prompt_tokens": totals.get("prompt_tokens", 0),
                     "completion_tokens": totals.get("completion_tokens", 0),
                     "cost_usd": totals.get("cost_usd", 0.0), "priced": totals.get("priced", True)})
    return rows


def serving_cost(result_sets: list, *, hourly_usd: float = DEFAULT_HOURLY_USD, prices=None) -> dict:
    """{"model", "kind", "usd_per_1k_tokens", "basis", ...} for one evaluated model, from all its result sets."""
    from rdistill.teachers.prices import load_prices, price_for

    run = result_sets[0].run
    usage = throughput([r for s in result_sets for r in s.results])
    row = {"model": result_sets[0].model, "model_id": run.get("model_id"), "local": bool(run.get("local")),
           "completion_tokens": usage["completion_tokens"], "prompt_tokens": usage["prompt_tokens"],
           "tokens_per_second": usage["tokens_per_second"], "host": run.get("host"), "usd_per_1k_tokens": None}
    if row["local"]:
        tps = usage["tokens_per_second"]
        row["kind"] = "local"
        if tps:
            row["usd_per_1k_tokens"] = hourly_usd / 3600.0 / tps * 1000.0
            row["basis"] = f"{tps:.1f} tokens/s measured on {describe_host(run.get('host'))}, at ${hourly_usd:.2f}/hour"
        else:
            row["basis"] = "no timed generation in these results"
        return row
    row["kind"] = "api"
    provider, _, model = (run.get("model_id") or "").partition(":")
    price = price_for(prices or load_prices(), provider, model)
    if price is None:
        row["basis"] = "no price known for this model (pass a price table)"
    elif usage["completion_tokens"]:
        cost = price.cost(usage["prompt_tokens"], usage["completion_tokens"])
        row["usd_per_1k_tokens"] = cost / usage["completion_tokens"] * 1000.0
        row["basis"] = (f"list price ${price.input_per_m:g}/M input, ${price.output_per_m:g}/M output tokens, "
                        f"with this evaluation's {usage['prompt_tokens'] / usage['completion_tokens']:.2f} prompt "
                        "tokens per generated token")
    else:
        row["basis"] = "no generated tokens in these results"
    return row


def describe_host(host: dict | None) -> str:
    if not host:
        return "an unrecorded machine"
    if host.get("accelerator"):
        return f"{host['accelerator']} ({host.get('cpus')} CPUs)"
    return f"{host.get('cpus')} CPU cores ({host.get('machine')}), no GPU"
