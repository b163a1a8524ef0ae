"""The training core for pair methods (contrastive, dpo): core.train's run, with pairs instead of examples.

A pair method differs from an SFT method only in its rows (a chosen and a rejected sequence per pair) and in its
trainer; everything around them is core's own code: loading the student, checkpoints and --resume (the same
fingerprint check, the same last-complete-checkpoint rule), metrics.jsonl and progress, saving (LoRA adapter and
merged model), the run record and the model card. So a pair run's folder looks and loads like any other student's.

Pairs longer than --max-length on either side are dropped, as core drops long examples: a cut sequence loses its
answer, and the pair would compare two truncated texts. The run record counts pairs as its "examples".
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rdistill.errors import RdistillError
from rdistill.jsonl import atomic_writer
from rdistill.train import core
from rdistill.train.callbacks import MetricsFile, Progress, _reporter_class
from rdistill.train.examples import TraceData
from rdistill.train.pairs import Pair, PairSet
from rdistill.train.prompting import RUN_CONFIG_FILE, PromptFormat
from rdistill.train.quiet import quiet_libraries
from rdistill.train.run_record import stage_record, write_run_record
from rdistill.train.saving import save_student
from rdistill.train.settings import TrainSettings
from rdistill.train.tokenize import IGNORE, TokenizedStage, ensure_chat_template, tokenize_example
from rdistill.train.trainer import TokenMeter

STAGE = "pairs"


@dataclass
class TokenizedPairs:
    pairs: list[Pair]  # the pairs kept (both sides within --max-length)
    rows: list[dict[str, list[int]]]  # chosen_input_ids, chosen_labels, rejected_input_ids, rejected_labels
    stage: TokenizedStage  # the counts the run record keeps; `examples` are pairs


def tokenize_pairs(tokenizer, pairs: list[Pair], *, max_length: int) -> TokenizedPairs:
    """Both sides through cot_sft's tokenization (tokenize.py): the chat template, loss labels on the reply only."""
    kept, rows, dropped, tokens, completion = [], [], 0, 0, 0
    for pair in pairs:
        sides = [tokenize_example(tokenizer, example) for example in (pair.chosen_example(), pair.rejected_example())]
        if max(len(side["input_ids"]) for side in sides) > max_length:
            dropped += 1
            continue
        kept.append(pair)
        rows.append({f"{name}_{key}": side[key] for name, side in zip(("chosen", "rejected"), sides)
                     for key in ("input_ids", "labels")})
        tokens += sum(len(side["input_ids"]) for side in sides)
        completion += sum(label != IGNORE for side in sides for label in side["labels"])
    if not kept:
        raise RdistillError(f"every pair has a side longer than --max-length {max_length} tokens: raise --max-length")
    return TokenizedPairs(kept, rows, TokenizedStage(rows, len(rows), dropped, tokens, completion))


def training_arguments(settings: TrainSettings, output_dir: Path) -> dict[str, Any]:
    """The TrainingArguments a pair trainer runs with: core.build_trainer's, field for field (keep them in step), so a
    pair run is scheduled, checkpointed and logged like an SFT run of the same settings."""
    return dict(
        output_dir=str(output_dir), num_train_epochs=settings.epochs, max_steps=settings.max_steps or -1,
        per_device_train_batch_size=settings.batch_size, gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.lr, lr_scheduler_type=settings.lr_scheduler, warmup_steps=settings.warmup_ratio,
        weight_decay=settings.weight_decay, logging_steps=settings.logging_steps, save_strategy="steps",
        save_steps=settings.save_steps, save_total_limit=settings.save_total_limit, seed=settings.seed,
        data_seed=settings.seed, bf16=core.use_bf16(settings), fp16=False,
        activation_checkpointing=settings.gradient_checkpointing, gradient_checkpointing=None,
        report_to=settings.report_to or "none", disable_tqdm=True,
        dataloader_num_workers=settings.dataloader_workers, dataloader_pin_memory=core._has_cuda(),
        use_cpu=core._cpu_only())


# make_trainer(model, tokenizer, tokenized, output_dir, callbacks, token_meter) -> a transformers Trainer
TrainerFactory = Callable[..., Any]


def pair_method_run(method: str, summary: str, build_trainer: Callable[..., Any], metric_keys: dict[str, str]):
    """The `run` of a pair method: cot_sft's prompt (the student is asked like a cot_sft student), the file's pairs,
    and `build_trainer(model, tokenizer, tokenized, settings, options, output_dir, callbacks, token_meter)`."""
    from dataclasses import asdict

    from rdistill.train.pairs import build_pairs

    def run(data: TraceData, settings: TrainSettings, options, on_progress=None) -> core.TrainResult:
        prompt = PromptFormat(settings.system_prompt)
        pair_set = build_pairs(data, prompt)

        def make_trainer(model, tokenizer, tokenized, output_dir, callbacks, token_meter):
            return build_trainer(model, tokenizer, tokenized, settings, options, output_dir, callbacks, token_meter)

        return train_on_pairs(method, summary, asdict(options), pair_set, prompt, settings, data, make_trainer,
                              metric_keys=metric_keys, on_progress=on_progress)

    return run


def train_on_pairs(method: str, summary: str, options: dict[str, Any], pair_set: PairSet, prompt: PromptFormat,
                   settings: TrainSettings, data: TraceData, make_trainer: TrainerFactory, *,
                   metric_keys: dict[str, str], on_progress: Callable[[Progress], None] | None = None
                   ) -> core.TrainResult:
    """Train on `pair_set` with the trainer `make_trainer` builds; `metric_keys` maps the trainer's own log keys to
    the extra columns of metrics.jsonl (the pair margin, DPO's rewards)."""
    settings.validate()
    recipe = core.Recipe(method, summary, [core.Stage(STAGE, [])], prompt, options)
    out = settings.output_dir
    process = core._process_state(out)
    core._check_output_dir(out, settings.resume)
    with quiet_libraries():
        model, tokenizer = core.load_student(settings)
        template = ensure_chat_template(tokenizer)
        tokenized = tokenize_pairs(tokenizer, pair_set.pairs, max_length=settings.max_length)
        [folder] = core._stage_dirs(out, 1)
        metrics = MetricsFile(out)
        _, resume_from, _ = core._plan_resume(process, recipe, settings, data, [tokenized.stage], [folder], metrics)
        meter = TokenMeter()
        reporter = _pair_reporter_class()(_ExtraColumns(metrics), meter, 1, 1, 0, on_progress, metric_keys)
        trainer = make_trainer(model, tokenizer, tokenized, folder, [reporter], meter)
        for printer in _printers():  # they print; progress reaches the CLI via on_progress
            trainer.remove_callback(printer)
        steps = core._start_first_stage(trainer, resume_from, None)
        stages = [stage_record(STAGE, tokenized.stage, settings.epochs, steps)]
        metrics.close()
        process.wait_for_everyone()
        run: dict[str, Any] = {}
        if process.is_main_process:
            outputs = save_student(_without_reference_adapter(trainer.model), tokenizer, out, student=settings.student,
                                   merged=settings.save_merged)
            run = write_run_record(recipe, settings, data, [tokenized.stage], stages, template, metrics.records(),
                                   outputs)
            run = _add_pair_counts(out, run, pair_set, tokenized)
        process.wait_for_everyone()
    summary_metrics = run.get("metrics", {})
    return core.TrainResult(out, summary_metrics.get("final_loss"), summary_metrics.get("tokens_per_s"), steps, run)


# -- internals -------------------------------------------------------------------------------------------


def _add_pair_counts(out: Path, run: dict[str, Any], pair_set: PairSet, tokenized: TokenizedPairs) -> dict[str, Any]:
    """The run record with the pairing counts (how many pairs, from how many problems, which kinds of negatives)."""
    run = {**run, "pairs": {**pair_set.counts, "trained": len(tokenized.pairs),
                            "dropped_too_long": tokenized.stage.dropped_too_long}}
    with atomic_writer(out / RUN_CONFIG_FILE) as fh:
        fh.write(json.dumps(run, indent=2, default=str) + "\n")
    return run


def _without_reference_adapter(model):
    """TRL's DPOTrainer, given a student that already is a LoRA adapter, trains it against a frozen copy named "ref";
    that copy is not part of the student."""
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")
    return model


def _printers():
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    return PrinterCallback, ProgressCallback


class _ExtraColumns:
    """A MetricsFile front that adds the pair metrics of the step being logged to its line."""

    def __init__(self, metrics: MetricsFile):
        self.metrics, self.extra = metrics, {}

    def append(self, record: dict[str, Any]) -> None:
        self.metrics.append({**record, **self.extra})


@functools.cache
def _pair_reporter_class():
    base = _reporter_class()

    class PairReporter(base):
        def __init__(self, metrics, meter, stage, stages, step_offset, on_progress, metric_keys):
            super().__init__(metrics, meter, stage, stages, step_offset, on_progress)
            self.metric_keys = metric_keys

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            extra = {column: float(logs[key]) for key, column in self.metric_keys.items() if key in logs}
            if "logp_chosen" in extra and "logp_rejected" in extra:
                extra.setdefault("logp_margin", extra["logp_chosen"] - extra["logp_rejected"])
            self.metrics.extra = extra
            super().on_log(args, state, control, logs=logs, **kwargs)

    return PairReporter
