"""Public reasoning benchmarks as `Problem` records, by name.

    load_benchmark("gsm8k")                                   # Hugging Face hub (needs network + datasets)
    load_benchmark("gsm8k", path="/data/gsm8k", split="train")  # local upstream files, offline

Loaders are imported only when asked for (as in lm-evaluation-harness), so listing names costs nothing
and one benchmark's dependencies never slow another. Each loader module has `load(split, path, limit)`
and `row_to_problem(row, index, split)`; hub rows and local rows both go through the latter.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from rdistill.errors import UnknownNameError
from rdistill.records import Problem

BENCHMARKS: dict[str, str] = {
    "gsm8k": "rdistill.data.benchmarks.gsm8k",
    "math500": "rdistill.data.benchmarks.math500",
    "arc_challenge": "rdistill.data.benchmarks.arc_challenge",
    "strategyqa": "rdistill.data.benchmarks.strategyqa",
    "svamp": "rdistill.data.benchmarks.svamp",
    "multiarith": "rdistill.data.benchmarks.multiarith",
    "commonsenseqa": "rdistill.data.benchmarks.commonsenseqa",
}


def list_benchmarks() -> list[str]:
    return sorted(BENCHMARKS)


def canonical_name(name: str) -> str:
    """`ARC-Challenge` and `arc_challenge` name the same benchmark."""
    return name.strip().lower().replace("-", "_")


def load_benchmark(name: str, *, split: str = "test", path: str | Path | None = None,
                   limit: int | None = None) -> list[Problem]:
    """Load a benchmark's split: from local upstream files when `path` is given, else from the hub.

    `path` is one upstream file or a directory holding them (the right file is picked by split).
    `limit` keeps the first N problems in upstream order. Raises `UnknownNameError` (with did-you-mean)
    for an unknown benchmark or split, and `InputError` naming file, line or record, and field for bad data.
    """
    key = canonical_name(name)
    if key not in BENCHMARKS:
        raise UnknownNameError("benchmark", name, list(BENCHMARKS))
    loader = importlib.import_module(BENCHMARKS[key])
    return loader.load(split=split, path=path, limit=limit)
