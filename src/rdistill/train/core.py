"""The one training core every SFT-style method runs on.

A method hands over a `Recipe`: stages of examples (one stage for most methods, several for a curriculum), the
prompt format the student will be asked with, and whether examples carry loss weights. The core then:

1. loads the student through rdistill.models (on the CPU; Trainer/accelerate move it to the device they manage),
   with the student's own chat template (a plain Q/A one if it has none);
2. tokenizes each stage (loss on completion tokens only) and optionally packs it (see tokenize.py, collator.py);
3. trains each stage with DistillTrainer (TRL's SFTTrainer) continuing from the previous stage's weights: LoRA
   (peft, all linear layers) or full fine-tuning, gradient accumulation, bf16 where the GPU has it, a checkpoint every
   --save-steps and at the end of each stage;
4. on --resume, continues from the last complete checkpoint (weights, optimizer, scheduler, RNG, data position);
5. saves the student in Hugging Face format (LoRA: adapter and merged model), rdistill_train.json (the run record,
   with the prompt format evaluation must use), a model card, and metrics.jsonl.

Runs as is on one CPU or GPU, and on several GPUs (or CPU processes) under `accelerate launch`: every process runs
this code; only the main one writes files other than Trainer's checkpoints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rdistill.errors import RdistillError
from rdistill.train.callbacks import MetricsFile, Progress, make_reporter
from rdistill.train.checkpoints import (CHECKPOINTS_DIR, check_fingerprint, checkpoint_progress,
                                        last_complete_checkpoint, set_aside_incomplete_checkpoints)
from rdistill.train.examples import Example, TraceData
from rdistill.train.quiet import quiet_libraries
from rdistill.train.prompting import RUN_CONFIG_FILE, PromptFormat
from rdistill.train.run_record import stage_record, write_run_record
from rdistill.train.saving import save_student
from rdistill.train.settings import TrainSettings
from rdistill.train.tokenize import TokenizedStage, ensure_chat_template, to_dataset, tokenize_stage

log = logging.getLogger(__name__)

@dataclass
class Stage:
    name: str
    examples: list[Example]
    epochs: float | None = None  # None: --epochs


@dataclass
class Recipe:
    method: str
    summary: str  # one line for the model card: what the student learns to do
    stages: list[Stage]
    prompt: PromptFormat  # how evaluation must ask the trained student
    options: dict[str, Any] = field(default_factory=dict)  # the method's own settings, for the record
    weighted: bool = False  # examples carry loss weights (per-example normalisation, see trainer.py)
    # A method that trains on more than tokens and labels (kd: the teacher's top-k per position) adds its columns
    # to each tokenized row here, and brings the trainer class that reads them (trainer.py's DistillTrainer if None).
    decorate_row: Callable[[Any, Example, dict[str, list]], dict[str, list]] | None = None
    trainer_class: Callable[[], type] | None = None
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)  # what the method measured while preparing, for the record


@dataclass
class TrainResult:
    output_dir: Path
    final_loss: float | None
    tokens_per_s: float | None
    steps: int
    run: dict[str, Any]  # what rdistill_train.json holds


def train(recipe: Recipe, settings: TrainSettings, data: TraceData, *,
          on_progress: Callable[[Progress], None] | None = None) -> TrainResult:
    settings.validate()
    if not recipe.stages or not any(stage.examples for stage in recipe.stages):
        raise RdistillError(f"method {recipe.method} made no training examples from {data.path}")
    out = settings.output_dir
    process = _process_state(out)
    _check_output_dir(out, settings.resume)
    with quiet_libraries():
        model, tokenizer = load_student(settings)
        template = ensure_chat_template(tokenizer)
        tokenized = [tokenize_stage(tokenizer, stage.examples, max_length=settings.max_length,
                                    weighted=recipe.weighted, decorate=recipe.decorate_row) for stage in recipe.stages]
        stage_dirs = _stage_dirs(out, len(recipe.stages))
        metrics = MetricsFile(out)
        first, resume_from, step_offset = _plan_resume(process, recipe, settings, data, tokenized, stage_dirs,
                                                       metrics)
        stages = [_skipped_stage_record(recipe.stages[i], tokenized[i], settings, stage_dirs[i])
                  for i in range(first)]
        for i in range(first, len(recipe.stages)):
            trainer = _build_stage_trainer(model, tokenizer, tokenized[i], settings, recipe, stage_dirs[i], metrics,
                                           stage=i + 1, step_offset=step_offset, on_progress=on_progress)
            if i == first:
                steps = _start_first_stage(trainer, resume_from,
                                           last_complete_checkpoint(stage_dirs[i - 1]) if i > 0 else None)
            else:
                trainer.train()
                steps = trainer.state.max_steps
            model = trainer.model  # a PeftModel after the first LoRA stage; later stages keep training it
            step_offset += steps
            stages.append(stage_record(recipe.stages[i].name, tokenized[i],
                                       recipe.stages[i].epochs or settings.epochs, steps))
        metrics.close()
        process.wait_for_everyone()
        run: dict[str, Any] = {}
        if process.is_main_process:
            outputs = save_student(model, tokenizer, out, student=settings.student, merged=settings.save_merged)
            run = write_run_record(recipe, settings, data, tokenized, stages, template, metrics.records(), outputs)
        process.wait_for_everyone()
    metrics_summary = run.get("metrics", {})
    return TrainResult(out, metrics_summary.get("final_loss"), metrics_summary.get("tokens_per_s"), step_offset, run)


def load_student(settings: TrainSettings):
    """The student and its tokenizer, on the CPU, ready to train.

    Full fine-tuning keeps float32 master weights (bf16 then runs as autocast); LoRA holds the frozen base in bf16
    when training runs in bf16, which halves its memory (the adapter itself stays float32)."""
    from rdistill.models import load_causal_lm

    dtype = "bfloat16" if settings.lora and use_bf16(settings) else "float32"
    model, tokenizer = load_causal_lm(settings.student, dtype=dtype, device="cpu", for_training=True)
    from peft import PeftModel

    if isinstance(model, PeftModel) and not settings.lora:
        log.info("merging the student's LoRA adapter into its base for full fine-tuning")
        model = model.merge_and_unload()
    return model, tokenizer


def lora_config(settings: TrainSettings):
    from peft import LoraConfig

    # "all-linear": every linear layer of the blocks (attention and MLP), not the LM head: the QLoRA recipe, which
    # matches full fine-tuning far better than attention-only adapters.
    return LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _cpu_only() -> bool:
    """No accelerator at all. Telling Trainer so (use_cpu) forces nothing, and lets bf16 run as CPU autocast and
    several processes under accelerate launch form a gloo group (Trainer would otherwise refuse or run them apart)."""
    import torch

    accelerator = getattr(torch, "accelerator", None)
    return not (accelerator.is_available() if accelerator is not None else torch.cuda.is_available())


def use_bf16(settings: TrainSettings) -> bool:
    """bf16 only where this machine computes it fast (train/precision.py), unless the settings say otherwise."""
    from rdistill.train.precision import training_precision

    return training_precision(settings.bf16).bf16


def build_trainer(model, tokenizer, dataset, settings: TrainSettings, *, output_dir: Path, epochs: float,
                  layout: str, callbacks: list = (), token_meter=None, checkpoints: bool = True,
                  trainer_class: Callable[[], type] | None = None, trainer_kwargs: dict[str, Any] | None = None):
    """A DistillTrainer over an already tokenized (and packed) dataset; peft wraps the model on first use.
    `checkpoints=False` (benchmarks) saves nothing."""
    from peft import PeftModel
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTConfig

    from rdistill.train.collator import DistillCollator
    from rdistill.train.trainer import distill_trainer_class

    config = SFTConfig(
        output_dir=str(output_dir), num_train_epochs=epochs, max_steps=settings.max_steps or -1,
        per_device_train_batch_size=settings.batch_size, gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.lr, lr_scheduler_type=settings.lr_scheduler, warmup_steps=settings.warmup_ratio,
        weight_decay=settings.weight_decay, logging_steps=settings.logging_steps,
        save_strategy="steps" if checkpoints else "no",
        save_steps=settings.save_steps, save_total_limit=settings.save_total_limit, seed=settings.seed,
        data_seed=settings.seed, bf16=use_bf16(settings), fp16=False,
        # The new name, and the deprecated alias explicitly unset (TRL's default would turn it on and warn).
        activation_checkpointing=settings.gradient_checkpointing, gradient_checkpointing=None,
        report_to=settings.report_to or "none", disable_tqdm=True, remove_unused_columns=False,
        dataloader_num_workers=settings.dataloader_workers, dataloader_pin_memory=_has_cuda(), use_cpu=_cpu_only(),
        # Our rows are tokenized, labelled and packed already (tokenize.py); the collator is ours (collator.py).
        dataset_kwargs={"skip_prepare_dataset": True}, max_length=None, packing=False,
    )
    peft_config = lora_config(settings) if settings.lora and not isinstance(model, PeftModel) else None
    trainer = (trainer_class or distill_trainer_class)()(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
        data_collator=DistillCollator(tokenizer.pad_token_id, layout), peft_config=peft_config,
        callbacks=list(callbacks), token_meter=token_meter, **(trainer_kwargs or {}))
    for printer in (PrinterCallback, ProgressCallback):  # they print; progress reaches the CLI via on_progress
        trainer.remove_callback(printer)
    return trainer


# -- internals -------------------------------------------------------------------------------------------


def _build_stage_trainer(model, tokenizer, tokenized: TokenizedStage, settings: TrainSettings, recipe: Recipe,
                         folder: Path, metrics: MetricsFile, *, stage: int, step_offset: int, on_progress):
    from rdistill.train.collator import layout_for
    from rdistill.train.trainer import TokenMeter

    spec = recipe.stages[stage - 1]
    meter = TokenMeter()
    reporter = make_reporter(metrics, meter, stage=stage, stages=len(recipe.stages), step_offset=step_offset,
                             on_progress=on_progress)
    dataset = to_dataset(tokenized.rows, packing=settings.packing, max_length=settings.max_length)
    layout = layout_for(settings.packing, getattr(model.config, "_attn_implementation", None))
    trainer = build_trainer(model, tokenizer, dataset, settings, output_dir=folder,
                            epochs=spec.epochs or settings.epochs, layout=layout, callbacks=[reporter],
                            token_meter=meter, trainer_class=recipe.trainer_class,
                            trainer_kwargs=recipe.trainer_kwargs)
    return trainer


def _process_state(out: Path):
    """This process's place in a distributed run, set up exactly as Trainer will (accelerate launch, torchrun):
    a state made any other way would be reset by Trainer."""
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=str(out / CHECKPOINTS_DIR), report_to="none",
                             use_cpu=_cpu_only()).distributed_state


def _start_first_stage(trainer, resume_from: Path | None, previous_stage_end: Path | None) -> int:
    """Train the first stage this process runs, resuming if there is a checkpoint; returns its step count.

    Trainer's private _load_from_checkpoint is the loader train(resume_from_checkpoint=...) itself uses: it handles
    full models, PEFT adapters and sharded or distributed checkpoints, which a hand-written loader would not."""
    if resume_from is None:
        if previous_stage_end is not None:  # a fresh process starting a later stage: the weights stage i-1 ended with
            trainer._load_from_checkpoint(str(previous_stage_end))
        trainer.train()
        return trainer.state.max_steps
    done, total = checkpoint_progress(resume_from)
    if done >= total:
        # Finished before the crash (it died while saving the student): only the weights are needed. Trainer
        # resumed from a final checkpoint would train one step more.
        trainer._load_from_checkpoint(str(resume_from))
        return total
    log.info("resuming from %s (step %d of %d)", resume_from, done, total)
    trainer.train(resume_from_checkpoint=str(resume_from))
    return trainer.state.max_steps


def _check_output_dir(out: Path, resume: bool) -> None:
    if resume or not out.exists():
        return
    if not out.is_dir():
        raise RdistillError(f"output {out} exists and is not a folder")
    leftovers = [name for name in (CHECKPOINTS_DIR, "metrics.jsonl", RUN_CONFIG_FILE, "config.json")
                 if (out / name).exists()]
    if leftovers:
        raise RdistillError(f"output folder {out} already holds a run ({', '.join(leftovers)}): pass --resume to "
                            "continue it, or choose a new folder")


def _stage_dirs(out: Path, count: int) -> list[Path]:
    root = out / CHECKPOINTS_DIR
    return [root] if count == 1 else [root / f"stage-{i}" for i in range(1, count + 1)]


def _plan_resume(process, recipe: Recipe, settings: TrainSettings, data: TraceData,
                 tokenized: list[TokenizedStage], stage_dirs: list[Path], metrics: MetricsFile):
    """Check that a resumed run is the same run, tidy what a crash left, and find where to start:
    (first stage to run, checkpoint to resume it from, steps of the stages before it)."""
    if process.is_main_process:
        check_fingerprint(settings.output_dir / CHECKPOINTS_DIR, _fingerprint(recipe, settings, data, tokenized),
                          resume=settings.resume)
        for folder in stage_dirs:
            set_aside_incomplete_checkpoints(folder)
    process.wait_for_everyone()
    first, resume_from, step_offset = _resume_point(stage_dirs, settings.resume)
    if process.is_main_process:
        if resume_from is not None or first > 0:  # the steps after the checkpoint run again: drop their lines
            metrics.keep_until(first + 1, checkpoint_progress(resume_from)[0] if resume_from else 0)
        elif metrics.path.exists():
            metrics.path.unlink()  # --resume without a checkpoint: the run starts over
    return first, resume_from, step_offset


def _resume_point(stage_dirs: list[Path], resume: bool) -> tuple[int, Path | None, int]:
    """(first stage to run, checkpoint to resume it from, steps of the stages already finished)."""
    if not resume:
        return 0, None, 0
    offset = 0
    for i, folder in enumerate(stage_dirs):
        checkpoint = last_complete_checkpoint(folder)
        if checkpoint is None:
            return i, None, offset
        step, max_steps = checkpoint_progress(checkpoint)
        if step < max_steps or i == len(stage_dirs) - 1:  # a finished last stage only gives its final weights
            return i, checkpoint, offset
        offset += max_steps
    return 0, None, 0


def _fingerprint(recipe: Recipe, settings: TrainSettings, data: TraceData,
                 tokenized: list[TokenizedStage]) -> dict[str, Any]:
    return {"student": settings.student, "method": recipe.method, "method_options": recipe.options,
            "data_sha256": data.sha256, "hyperparameters": settings.hyperparameters(),
            "stages": [[stage.name, t.examples] for stage, t in zip(recipe.stages, tokenized)]}


def _skipped_stage_record(stage: Stage, tokenized: TokenizedStage, settings: TrainSettings,
                          folder: Path) -> dict[str, Any]:
    """A stage a resumed run did not train again: it had finished before the crash."""
    checkpoint = last_complete_checkpoint(folder)
    steps = checkpoint_progress(checkpoint)[1] if checkpoint else 0
    return {**stage_record(stage.name, tokenized, stage.epochs or settings.epochs, steps),
            "finished_before_resume": True}
