"""Every student of a finished run against one of them, on the same problems: the method table of a run folder.

    python bench/compare_methods.py runs/bench-kd --against cot_sft
    python bench/compare_methods.py runs/quickstart --against cot_sft --out /tmp/table.json

For each evaluation set and each student: accuracy (Wilson 95% interval, n), the paired difference from the
`--against` student on the same problems (bootstrap interval, exact McNemar p), answers cut off at max_tokens; per
student its training: method and options, steps, seconds, tokens/s and final loss from the run record, what the
method measured while preparing (kd: how the teacher's top-k met the student's tokenizer) and, where the method logs
loss parts (kd: kd_loss, lm_loss), their mean over the first and the last tenth of the steps. Reads the run folder
only (its manifest, train/NAME/rdistill_train.json and metrics.jsonl, eval/NAME/SET/*.jsonl); runs nothing.
Writes bench/results/compare_methods-<run folder name>.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]
RESULTS = ROOT / "bench" / "results"

LOSS_PARTS = ("kd_loss", "lm_loss")


def load_results(stage_dir: Path) -> dict[str, object]:
    """{problem_id: first-sample EvalResult} of the stage's one result file (a student is asked one way)."""
    from rdistill.jsonl import load_records
    from rdistill.records import EvalResult

    files = sorted(p for p in stage_dir.glob("*.jsonl"))
    if len(files) != 1:
        raise SystemExit(f"{stage_dir}: expected one result file, found {[p.name for p in files]}")
    return {r.problem_id: r for r in load_records(files[0], EvalResult) if r.sample_index == 0}


def loss_parts(metrics_file: Path) -> dict[str, dict[str, float]]:
    if not metrics_file.is_file():
        return {}
    rows = [json.loads(line) for line in metrics_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    tenth = max(1, len(rows) // 10)
    out = {}
    for key in LOSS_PARTS + ("loss",):
        values = [r[key] for r in rows if r.get(key) is not None]
        if values:
            out[key] = {"first_tenth": sum(values[:tenth]) / len(values[:tenth]),
                        "last_tenth": sum(values[-tenth:]) / len(values[-tenth:]), "steps": len(values)}
    return out


def training(run_dir: Path, name: str, manifest: dict) -> dict:
    folder = run_dir / "train" / name
    record = json.loads((folder / "rdistill_train.json").read_text(encoding="utf-8"))
    stage = manifest.get("stages", {}).get(f"train:{name}", {})
    return {"method": record["method"], "options": record.get("method_options"),
            "steps": record["metrics"].get("steps"), "train_seconds": record["metrics"].get("train_seconds"),
            "stage_seconds": stage.get("seconds"), "tokens_per_s": record["metrics"].get("tokens_per_s"),
            "final_loss": record["metrics"].get("final_loss"), "examples": record["data"].get("examples"),
            "packing": record["hyperparameters"].get("packing"), "measured": record.get("method_measured"),
            "loss_parts": loss_parts(folder / "metrics.jsonl")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--against", default="cot_sft", help="the student every other is compared with")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from rdistill.stats import paired_difference, wilson_interval

    run_dir = args.run_dir.resolve()
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    students = sorted(p.name for p in (run_dir / "train").iterdir() if (p / "rdistill_train.json").is_file())
    if args.against not in students:
        raise SystemExit(f"{args.against} is not a finished student of {run_dir} ({', '.join(students)})")
    sets = sorted({p.name for s in students for p in (run_dir / "eval" / s).iterdir() if p.is_dir()})
    table: dict[str, dict] = {}
    for set_name in sets:
        reference = load_results(run_dir / "eval" / args.against / set_name)
        ids = sorted(reference)
        rows = {}
        for name in students:
            results = load_results(run_dir / "eval" / name / set_name)
            if sorted(results) != ids:
                raise SystemExit(f"{name} and {args.against} answered different problems on {set_name}")
            correct = [bool(results[i].correct) for i in ids]
            n, k = len(ids), sum(correct)
            row = {"accuracy": k / n, "ci": list(wilson_interval(k, n)), "n": n,
                   "cut_off": sum(1 for i in ids if results[i].truncated)}
            if name != args.against:
                row["minus_" + args.against] = paired_difference(correct, [bool(reference[i].correct) for i in ids])
            rows[name] = row
        table[set_name] = rows

    print(f"{run_dir.name}: students against {args.against}")
    print(f"{'set':<10} {'student':<14} {'accuracy':>18} {'- ' + args.against:>24} {'p':>7}")
    for set_name, rows in table.items():
        for name, row in rows.items():
            diff = row.get("minus_" + args.against)
            d = (f"{diff['difference'] * 100:+.0f} [{diff['ci'][0] * 100:+.0f}, {diff['ci'][1] * 100:+.0f}]"
                 if diff else "")
            p = f"{diff['p_value']:.3g}" if diff else ""
            print(f"{set_name:<10} {name:<14} {row['accuracy']:>6.0%} [{row['ci'][0]:.0%}-{row['ci'][1]:.0%}] "
                  f"n={row['n']:<4} {d:>20} {p:>7}")
    trained = {name: training(run_dir, name, manifest) for name in students}
    for name, info in trained.items():
        parts = ", ".join(f"{k} {v['first_tenth']:.3f} -> {v['last_tenth']:.3f}" for k, v in info["loss_parts"].items())
        print(f"{name}: {info['steps']} steps, {info['train_seconds']}s training; {parts}")
        if info["measured"]:
            print(f"  measured: {info['measured']}")

    out = args.out or RESULTS / f"compare_methods-{run_dir.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "bench": "compare_methods", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run_dir), "recipe_sha256": (manifest.get("recipe") or {}).get("sha256"), "against": args.against,
        "table": table, "training": trained,
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])}, indent=2, default=str) + "\n",
        encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
