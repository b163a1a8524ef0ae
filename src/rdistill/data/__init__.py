"""Data sources: public benchmarks and other problem sets, converted to `Problem` records."""

from pathlib import Path as _Path

# Small benchmark subsets shipped inside the package (the first N records of GSM8K and MultiArith, with their
# licenses; scripts/bundle_data.py writes them), so the quickstart runs anywhere with no network. A recipe names
# them as `path: "{bundled}/gsm8k"`; a benchmark named without a path is read from the hub as before.
BUNDLED_DATA = _Path(__file__).resolve().parent / "bundled"


def is_bundled(path: str | _Path | None) -> bool:
    if path is None:
        return False
    resolved = _Path(path).resolve()
    return resolved == BUNDLED_DATA or BUNDLED_DATA in resolved.parents
