"""Do students trained on Orca-style traces follow the system prompt they are given? (train method orca)

    python bench/orca_styles.py RUN_DIR                      # every student of the run, the run's held-out set
    python bench/orca_styles.py RUN_DIR --students orca cot_sft --limit 50

Each student is asked the same problems once per prompt: the run's own (the terse prompt it is evaluated with) and
every style's system prompt recorded by an orca student (`method_measured.styles` in its rdistill_train.json).
Per student and prompt: accuracy (Wilson 95%), steps per answer and completion tokens per answer (means with
bootstrap intervals), answers cut off. A student that follows its prompts answers in steps and lengths that move
with the prompt; cot_sft, trained under one prompt, is the control. Greedy, the recipe's max_tokens and serving
(student.trained_model, student.backend_options), response cache on (answers are reused between runs of this
bench). Writes bench/results/orca_styles-<run folder name>.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]
RESULTS = ROOT / "bench" / "results"


def mean_ci(values: list[float]) -> dict:
    from rdistill.stats import bootstrap_interval

    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "ci": None, "n": 0}
    return {"mean": sum(values) / len(values), "ci": list(bootstrap_interval(values)), "n": len(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--students", nargs="*", default=None, help="default: every finished student of the run")
    ap.add_argument("--set", default="heldout")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from rdistill.evaluate.runner import close_client, evaluate
    from rdistill.jsonl import load_records
    from rdistill.pipeline.recipe import eval_options, load_recipe
    from rdistill.pipeline.stages import eval_model_string
    from rdistill.records import Problem
    from rdistill.stats import wilson_interval
    from rdistill.teachers import make_teacher

    run_dir = args.run_dir.resolve()
    recipe = load_recipe(run_dir / "recipe.yaml").recipe
    students = args.students or sorted(p.name for p in (run_dir / "train").iterdir()
                                       if (p / "rdistill_train.json").is_file())
    records = {name: json.loads((run_dir / "train" / name / "rdistill_train.json").read_text()) for name in students}
    prompts: dict[str, str | None] = {}
    for record in records.values():
        prompts.setdefault("run prompt", record["prompt"].get("system_prompt"))
        for style, info in ((record.get("method_measured") or {}).get("styles") or {}).items():
            prompts.setdefault(style, info["system_prompt"])
    problems = load_records(run_dir / "data" / "eval" / f"{args.set}.jsonl", Problem)[:args.limit]
    base = replace(eval_options(recipe, "student", "trained"), faithfulness_n=0)
    table: dict[str, dict] = {}
    for name in students:
        spec = eval_model_string(recipe, name, run_dir)
        client = make_teacher(spec, cache=True, backend_options=dict(recipe.student.backend_options))
        try:
            rows = {}
            for label, system in prompts.items():
                print(f"{name} asked with {label!r} ...", flush=True)
                options = replace(base, prompt_style="teacher", system_prompt=system) if system else base
                run = evaluate(spec, problems, bench=args.set, options=options, client=client)
                results = [r for r in run.results if r.sample_index == 0]
                k, n = sum(r.correct for r in results), len(results)
                rows[label] = {"accuracy": k / n, "ci": list(wilson_interval(k, n)), "n": n,
                               "steps": mean_ci([r.n_steps for r in results]),
                               "completion_tokens": mean_ci([r.usage.completion_tokens for r in results]),
                               "cut_off": sum(1 for r in results if r.truncated)}
            table[name] = rows
        finally:
            close_client(client)

    print(f"\n{'student':<12} {'prompt':<26} {'accuracy':>16} {'steps':>7} {'tokens':>7} {'cut':>4}")
    for name, rows in table.items():
        for label, row in rows.items():
            print(f"{name:<12} {label[:26]:<26} {row['accuracy']:>5.0%} [{row['ci'][0]:.0%}-{row['ci'][1]:.0%}] "
                  f"{row['steps']['mean'] or 0:>7.2f} {row['completion_tokens']['mean'] or 0:>7.1f} "
                  f"{row['cut_off']:>4}")
    out = args.out or RESULTS / f"orca_styles-{run_dir.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bench": "orca_styles", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "run_dir": str(run_dir), "set": args.set, "n": len(problems), "prompts": prompts,
                               "table": table,
                               "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])},
                              indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
