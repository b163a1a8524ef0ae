"""The stage seconds a run folder's manifest holds, for a run that did not reach the end (interrupted, killed):
bench/pipeline_stages.py writes its JSON only when the run finishes.

    python3 bench/run_folder_stages.py RUN_DIR --note "why it stopped" --out bench/results/NAME.json

Writes each stage's status, seconds, calls and tokens from RUN_DIR/manifest.json, the training speed logged so far
(tokens/s per optimizer step, from metrics.jsonl of finished and partial training stages), the recipe's overrides,
versions and host as the manifest recorded them, and the note.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def training_speed(run_dir: Path) -> dict:
    speeds = {}
    for metrics in sorted(run_dir.glob("**/train/*/metrics.jsonl")):
        rows = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
        rates = [r["tokens_per_s"] for r in rows if r.get("tokens_per_s")]
        if rates:
            speeds[metrics.parent.name + (" (partial)" if ".partial" in metrics.parts else "")] = {
                "optimizer_steps": len(rates), "tokens_per_s_median": round(statistics.median(rates), 2),
                "tokens_per_s_min": round(min(rates), 2), "tokens_per_s_max": round(max(rates), 2)}
    return speeds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--note", required=True, help="Why the run stopped, and what else ran on the machine.")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    manifest = json.loads((args.run_dir / "manifest.json").read_text(encoding="utf-8"))
    stages = [{"stage": name, "status": entry.get("status"), "seconds": entry.get("seconds"),
               "calls": (entry.get("usage") or {}).get("calls"),
               "completion_tokens": (entry.get("usage") or {}).get("completion_tokens"),
               "detail": entry.get("detail")} for name, entry in manifest["stages"].items()]
    result = {"bench": "run_folder_stages", "run_dir": str(args.run_dir), "note": args.note,
              "created_at": manifest.get("created_at"), "updated_at": manifest.get("updated_at"),
              "stages": stages, "seconds_done": round(sum(s["seconds"] or 0 for s in stages
                                                          if s["status"] == "done"), 1),
              "training_speed": training_speed(args.run_dir), "overrides": manifest["recipe"].get("overrides"),
              "versions": manifest.get("versions"), "host": manifest.get("host")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    for s in stages:
        print(f"{s['stage']:<26} {s['status'] or '':<8} {s['seconds'] or 0:>8.1f} s  calls {s['calls'] or ''}")
    print(f"training speed: {result['training_speed']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
