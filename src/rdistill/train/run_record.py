"""What a finished run writes beside the student: rdistill_train.json (the run record) and README.md (model card).

The run record is the machine-readable account evaluation and reports read: the prompt format to ask the student
with, the method and its options, the data file's hash and counts, the hyperparameters, per-stage and overall
training metrics (summarised from metrics.jsonl, so a resumed run counts every step once) and library versions.
It is written last and atomically: its presence says the folder holds a finished student.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import TYPE_CHECKING, Any

from rdistill.jsonl import atomic_writer
from rdistill.train.model_card import render_model_card
from rdistill.train.prompting import RUN_CONFIG_FILE

if TYPE_CHECKING:
    from rdistill.train.core import Recipe
    from rdistill.train.examples import TraceData
    from rdistill.train.settings import TrainSettings
    from rdistill.train.tokenize import TokenizedStage

RUN_SCHEMA_VERSION = 1


def stage_record(name: str, tokenized: "TokenizedStage", epochs: float, steps: int) -> dict[str, Any]:
    return {"name": name, "examples": tokenized.examples, "dropped_too_long": tokenized.dropped_too_long,
            "tokens": tokenized.tokens, "completion_tokens": tokenized.completion_tokens, "epochs": epochs,
            "steps": steps}


def write_run_record(recipe: "Recipe", settings: "TrainSettings", data: "TraceData",
                     tokenized: list["TokenizedStage"], stages: list[dict[str, Any]], chat_template: str,
                     metrics: list[dict[str, Any]], outputs: dict[str, Any]) -> dict[str, Any]:
    from rdistill import __version__
    from rdistill.train.precision import training_precision

    out = settings.output_dir
    for number, stage in enumerate(stages, start=1):
        losses = [r["loss"] for r in metrics if r.get("stage") == number and r.get("loss") is not None]
        stage["final_loss"] = losses[-1] if losses else None
    run = {
        "schema_version": RUN_SCHEMA_VERSION,
        "output_name": out.resolve().name,
        "method": recipe.method,
        "method_summary": recipe.summary,
        "method_options": recipe.options,
        "student": settings.student,
        "chat_template": chat_template,
        "prompt": recipe.prompt.to_json(),
        "hyperparameters": settings.hyperparameters(),
        "precision": training_precision(settings.bf16).as_record(),
        "data": {**data.describe(), "examples": sum(t.examples for t in tokenized),
                 "dropped_too_long": sum(t.dropped_too_long for t in tokenized)},
        "stages": stages,
        **({"method_measured": recipe.record} if recipe.record else {}),
        "metrics": summarise(metrics),
        "outputs": outputs,
        "versions": {"rdistill": __version__, **library_versions()},
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    (out / "README.md").write_text(render_model_card(run), encoding="utf-8")
    with atomic_writer(out / RUN_CONFIG_FILE) as fh:
        fh.write(json.dumps(run, indent=2, default=str) + "\n")
    return run


def summarise(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    tokens = sum(r.get("tokens") or 0 for r in metrics)
    seconds = sum(r.get("seconds") or 0 for r in metrics)
    losses = [r["loss"] for r in metrics if r.get("loss") is not None]
    return {"final_loss": losses[-1] if losses else None,
            "mean_loss": sum(losses) / len(losses) if losses else None,
            "steps": metrics[-1]["step"] if metrics else 0,
            "tokens": tokens, "train_seconds": round(seconds, 3),
            "tokens_per_s": tokens / seconds if seconds > 0 else None}


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "trl", "peft", "accelerate"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found
