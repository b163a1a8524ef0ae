"""The method table of a finished run (`rdistill compare RUN_DIR`): the article's table, in its shape.

Rows are the evaluated models (the untrained student first, then every student, the teacher last), columns the
evaluation sets in the recipe's order. Each cell: accuracy with its 95% Wilson interval and n, and for a student the
paired difference from the reference student (`--against`, default cot_sft) on the same problems, with its bootstrap
interval and exact McNemar p. Per row, what it took: the teacher tokens and dollars spent on its training data (the
shared generation stage for methods that train on the teacher's traces, plus a closed loop's own teacher calls; none
for STaR without a teacher rationalizer) and its training minutes (the stage's seconds).

Everything is read from the run folder (manifest.json, eval/MODEL/SET/*.jsonl, select/baseline/choice.json); nothing
is run. The baseline is read with the prompt it was evaluated with (chosen on validation, else each prompt is a row).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rdistill.errors import RdistillError

SIGNIFICANCE = 0.05
TRACE_METHODS_SKIP_TEACHER = ("star",)  # trained on the student's own answers, not on the generation stage's


def method_table(run_dir: str | Path, *, against: str = "cot_sft") -> dict[str, Any]:
    from rdistill.jsonl import load_records
    from rdistill.records import EvalResult
    from rdistill.stats import paired_difference, wilson_interval

    run_dir = Path(run_dir)
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise RdistillError(f"{run_dir} is not a run folder (no manifest.json): give the folder `rdistill run` wrote")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    stages = manifest.get("stages") or {}
    evals = [name for name, entry in stages.items() if name.startswith("eval:") and entry.get("status") == "done"]
    if not evals:
        raise RdistillError(f"{run_dir}: no finished evaluation stage to tabulate")
    resolved = (manifest.get("recipe") or {}).get("resolved") or {}
    set_order = (resolved.get("eval") or {}).get("sets") or list((resolved.get("data") or {}).get("eval") or {})
    sets = list(dict.fromkeys([*[s for s in set_order if any(e.endswith(f":{s}") for e in evals)],
                               *[e.split(":")[2] for e in evals]]))
    models = list(dict.fromkeys(e.split(":")[1] for e in evals))
    models = ([m for m in models if m == "baseline"] + [m for m in models if m not in ("baseline", "teacher")]
              + [m for m in models if m == "teacher"])

    results: dict[tuple[str, str], dict[str, dict]] = {}
    for model in models:
        for set_name in sets:
            folder = run_dir / "eval" / model / set_name
            for label, path in _result_files(run_dir, model, folder):
                found = {r.problem_id: r for r in load_records(path, EvalResult) if r.sample_index == 0}
                results.setdefault((label, set_name), found)
    labels = list(dict.fromkeys(label for label, _ in results))
    reference = against if any(label == against for label in labels) else None

    rows = []
    for label in labels:
        model = label.split(" [")[0]
        cells = {}
        for set_name in sets:
            found = results.get((label, set_name))
            if not found:
                continue
            ids = sorted(found)
            k, n = sum(bool(found[i].correct) for i in ids), len(ids)
            cell: dict[str, Any] = {"accuracy": k / n if n else None, "ci": list(wilson_interval(k, n)), "n": n}
            base = results.get((reference, set_name)) if reference and label != reference else None
            if base and sorted(base) == ids and model not in ("teacher",):
                cell["paired"] = paired_difference([bool(found[i].correct) for i in ids],
                                                   [bool(base[i].correct) for i in ids])
            cells[set_name] = cell
        rows.append({"label": label, "model": model, "cells": cells, **_costs(model, stages, manifest)})
    return {"run_dir": str(run_dir), "against": reference, "sets": sets, "rows": rows,
            "verdicts": _verdicts(rows, reference, sets)}


def _result_files(run_dir: Path, model: str, folder: Path) -> list[tuple[str, Path]]:
    files = sorted(folder.glob("*.jsonl"))
    if model != "baseline" or len(files) <= 1:
        return [(model, f) for f in files[:1]]
    choice = run_dir / "select" / "baseline" / "choice.json"
    if choice.is_file():
        prompt = json.loads(choice.read_text(encoding="utf-8"))["prompt"]
        return [(model, f) for f in files if f.stem == prompt][:1]
    return [(f"baseline [{f.stem}]", f) for f in files]


def _costs(model: str, stages: dict, manifest: dict) -> dict[str, Any]:
    """Teacher tokens and dollars behind a row's training data, and its training minutes."""
    if model in ("teacher", "baseline"):
        return {"teacher_tokens": None, "teacher_usd": None, "train_minutes": None}
    generate = stages.get("generate", {}).get("usage") or {}
    tokens = (generate.get("prompt_tokens", 0) + generate.get("completion_tokens", 0))
    usd = generate.get("cost_usd", 0.0)
    if model == "star":
        tokens, usd = 0, 0.0
        seconds = sum(e.get("seconds") or 0 for name, e in stages.items() if name.startswith("star:"))
    elif model in ("targeted", "targeted_random"):
        entry = stages.get("targeted" if model == "targeted" else "targeted:random", {})
        extra = entry.get("usage") or {}
        tokens += extra.get("prompt_tokens", 0) + extra.get("completion_tokens", 0)
        usd += extra.get("cost_usd", 0.0)
        seconds = entry.get("seconds")
    else:
        seconds = stages.get(f"train:{model}", {}).get("seconds")
    return {"teacher_tokens": tokens, "teacher_usd": usd,
            "train_minutes": round(seconds / 60, 1) if seconds is not None else None}


def _verdicts(rows: list[dict], reference: str | None, sets: list[str]) -> list[str]:
    """One plain sentence per student and set: better or worse than the reference with p < 0.05, or not shown."""
    if reference is None:
        return []
    out = []
    for row in rows:
        for set_name in sets:
            paired = (row["cells"].get(set_name) or {}).get("paired")
            if not paired or paired.get("difference") is None:
                continue
            points = paired["difference"] * 100
            if paired["p_value"] < SIGNIFICANCE:
                word = "better" if points > 0 else "worse"
                out.append(f"{row['label']} is {word} than {reference} on {set_name}: {points:+.0f} points "
                           f"(exact McNemar p={paired['p_value']:.3g})")
            else:
                out.append(f"{row['label']} vs {reference} on {set_name}: {points:+.0f} points, not shown to differ "
                           f"(p={paired['p_value']:.3g})")
    return out


def render_markdown(table: dict[str, Any]) -> str:
    sets = table["sets"]
    reference = table["against"]
    head = ["model", *sets, "teacher tokens", "teacher $", "training min"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table["rows"]:
        cells = []
        for set_name in sets:
            cell = row["cells"].get(set_name)
            if not cell:
                cells.append("–")
                continue
            text = f"{cell['accuracy']:.0%} [{cell['ci'][0]:.0%}–{cell['ci'][1]:.0%}] n={cell['n']}"
            paired = cell.get("paired")
            if paired and paired.get("difference") is not None:
                text += (f"<br>{paired['difference'] * 100:+.0f} vs {reference} [{paired['ci'][0] * 100:+.0f}, "
                         f"{paired['ci'][1] * 100:+.0f}], p={paired['p_value']:.2g}")
            cells.append(text)
        tokens = "–" if row["teacher_tokens"] is None else f"{row['teacher_tokens']:,}"
        usd = "–" if row["teacher_usd"] is None else f"${row['teacher_usd']:.4f}"
        minutes = "–" if row["train_minutes"] is None else f"{row['train_minutes']:g}"
        lines.append("| " + " | ".join([row["label"], *cells, tokens, usd, minutes]) + " |")
    text = "\n".join(lines) + "\n"
    if table["verdicts"]:
        text += "\n" + "\n".join(f"- {v}" for v in table["verdicts"]) + "\n"
    return text
