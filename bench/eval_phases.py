"""Where an evaluation's time went, per result file of a run folder: answering, and the faithfulness probes after it.

    python bench/eval_phases.py RUN_DIR [--out bench/results/eval_phases-NAME.json]

Reads every `*.summary.json` under RUN_DIR/eval and RUN_DIR/select (what `evaluate` wrote: seconds of the answers
and in all, tokens, cached prompt tokens, answers cut off) and prints one line per model x set x prompt, with the
probes' seconds (total minus answers) and their sum. bench/pipeline_stages.py records the same table for every run
it times (`eval_phases` in its JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def eval_phases(run_dir: Path) -> dict:
    """Per result file: seconds answering and probing, tokens (prompt, of them cached, completion), answers cut off;
    and the sums."""
    rows = []
    for summary_path in sorted([*run_dir.glob("eval/*/*/*.summary.json"), *run_dir.glob("select/*/*.summary.json")]):
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        seconds, throughput = summary.get("seconds") or {}, summary.get("throughput") or {}
        answers, total = seconds.get("answers"), seconds.get("total")
        results = summary_path.with_name(summary_path.name.replace(".summary.json", ".jsonl"))
        truncated = None
        if results.is_file():
            lines = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
            truncated = sum(1 for r in lines if r.get("truncated"))
        rows.append({"file": str(summary_path.relative_to(run_dir)), "model": summary.get("model"),
                     "set": summary.get("bench"), "prompt_style": summary.get("prompt_style"),
                     "problems": (summary.get("accuracy") or {}).get("accuracy", {}).get("n"),
                     "answers_seconds": answers, "total_seconds": total,
                     "probe_seconds": round(total - answers, 3) if answers is not None and total is not None else None,
                     "faithfulness_n": (summary.get("options") or {}).get("faithfulness_n"),
                     "prompt_tokens": throughput.get("prompt_tokens"),
                     "cached_prompt_tokens": throughput.get("cached_prompt_tokens"),
                     "completion_tokens": throughput.get("completion_tokens"), "truncated": truncated})

    def total(key: str) -> float:
        return round(sum(r[key] or 0 for r in rows), 3)

    return {"rows": rows, "totals": {k: total(k) for k in ("answers_seconds", "probe_seconds", "total_seconds",
                                                              "prompt_tokens", "cached_prompt_tokens",
                                                              "completion_tokens")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out", type=Path, help="Write the table as JSON here.")
    args = ap.parse_args()
    if not (args.run_dir / "manifest.json").is_file():
        sys.exit(f"error: {args.run_dir} is not a run folder (no manifest.json)")
    phases = eval_phases(args.run_dir)
    width = max((len(r["file"]) for r in phases["rows"]), default=4)
    print(f"{'file':<{width}}  {'answers s':>9} {'probes s':>9} {'prompt tok':>10} {'cached':>8} {'out tok':>8}")
    for r in phases["rows"]:
        print(f"{r['file']:<{width}}  {r['answers_seconds'] or 0:>9.1f} {r['probe_seconds'] or 0:>9.1f} "
              f"{r['prompt_tokens'] or 0:>10} {r['cached_prompt_tokens'] or 0:>8} {r['completion_tokens'] or 0:>8}")
    t = phases["totals"]
    print(f"{'total':<{width}}  {t['answers_seconds']:>9.1f} {t['probe_seconds']:>9.1f} {t['prompt_tokens']:>10.0f} "
          f"{t['cached_prompt_tokens']:>8.0f} {t['completion_tokens']:>8.0f}")
    if args.out:
        manifest = json.loads((args.run_dir / "manifest.json").read_text(encoding="utf-8"))
        record = {"bench": "eval_phases", "run_dir": str(args.run_dir.resolve()),
                  "recipe": manifest.get("recipe", {}).get("resolved", {}).get("name"), **phases}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
