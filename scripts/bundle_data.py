"""Write the small benchmark subsets that ship inside the package (src/rdistill/data/bundled/) from full upstream
copies, so that the quickstart runs from any folder with no network.

    python3 scripts/bundle_data.py [--shared ../shared/data]

Each subset is the *first* N records of the upstream file, unchanged, so problem ids (line or index based) are the
same as when the full file is read. A SOURCE.md beside each names the upstream file, its sha256 and N; the
license files are copied along. Rerunning gives the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "rdistill" / "data" / "bundled"

# benchmark folder -> (file, records kept, license files, license name)
SUBSETS = {
    "gsm8k": ([("train.jsonl", 200), ("test.jsonl", 300)], ["LICENSE"], "MIT"),
    "multiarith": ([("MultiArith.json", 200)], ["LICENSE.LLM-Adapters"], "Apache-2.0 (the LLM-Adapters copy)"),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def first_records(source: Path, n: int) -> tuple[bytes, int]:
    if source.suffix == ".jsonl":
        lines = source.read_bytes().splitlines(keepends=True)
        return b"".join(lines[:n]), len(lines)
    records = json.loads(source.read_text(encoding="utf-8"))
    return (json.dumps(records[:n], indent=1, ensure_ascii=False) + "\n").encode("utf-8"), len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    for folder, (files, licenses, license_name) in SUBSETS.items():
        src, dst = args.shared / folder, OUT / folder
        dst.mkdir(parents=True, exist_ok=True)
        upstream = (src / "SOURCE.md").read_text(encoding="utf-8").strip()
        lines = [f"# {folder}: a subset bundled with rdistill", "",
                 f"License: {license_name}; the license text is beside this file.", "",
                 "| file | records kept | upstream records | upstream sha256 |", "|---|---|---|---|"]
        for name, n in files:
            data, total = first_records(src / name, n)
            (dst / name).write_bytes(data)
            lines.append(f"| {name} | the first {n} | {total} | {sha256(src / name)} |")
        for name in licenses:
            shutil.copyfile(src / name, dst / name)
        lines += ["", "Written by `scripts/bundle_data.py` from the full copy described below.", "",
                  "## Upstream", "", upstream.replace("\n# ", "\n### ").lstrip("# "), ""]
        (dst / "SOURCE.md").write_text("\n".join(lines), encoding="utf-8")
        print(f"{dst}: {', '.join(f'{name} ({n})' for name, n in files)}")


if __name__ == "__main__":
    main()
