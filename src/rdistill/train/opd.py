"""On-policy distillation (Agarwal et al. 2024, GKD; the Qwen3 report's on-policy distillation stage).

The student writes its own answers to the training questions, and is trained towards the teacher's next-token
distribution on exactly those tokens: it learns to recover from its own mistakes instead of imitating paths it never
takes. The loss is TRL's generalized Jensen-Shannon divergence between the two distributions per completion token
(`beta`: 0 forward KL, 1 reverse KL, the mode-seeking choice of on-policy distillation and our default, 0.5 JSD),
computed by TRL's DistillationTrainer, which also samples the student's answers (transformers generate; vLLM on a
GPU through its own settings). The teacher is white-box: a transformers model (`teacher=MODEL`, any model string
rdistill loads, e.g. offline:qwen2.5-coder-1.5b-instruct) beside the student, sharing its vocabulary (checked).

Only the trace file's questions are used (each once, in file order): the teacher's traces themselves are not
imitated. Everything around the trainer is core's: LoRA or full, checkpoints and --resume, metrics.jsonl (with the
student's completion length and entropy per step), saving, the run record and model card.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

from rdistill.errors import RdistillError
from rdistill.train import core
from rdistill.train.examples import TraceData
from rdistill.train.prompting import PromptFormat
from rdistill.train.registry import Method
from rdistill.train.settings import TrainSettings

SUMMARY = "the student's own answers, scored token by token against the teacher's distribution (on-policy)"
STAGE = "on-policy"
# TRL's log keys -> metrics.jsonl columns
METRIC_KEYS = {"completions/mean_length": "completion_length", "entropy": "entropy",
               "completions/clipped_ratio": "clipped_ratio"}


@dataclass(frozen=True)
class OPDOptions:
    teacher: str | None = None  # the white-box teacher's model string
    beta: float = 1.0  # generalized JSD: 0 forward KL, 1 reverse KL, 0.5 JSD
    temperature: float = 1.0  # sampling the student's answers, and softening both distributions
    max_completion_length: int = 256  # tokens the student may write per answer

    def __post_init__(self):
        if not self.teacher:
            raise ValueError("opd needs teacher=MODEL: the white-box teacher (e.g. offline:qwen2.5-coder-1.5b-instruct)")
        if not 0 <= self.beta <= 1:
            raise ValueError(f"beta must be in [0, 1], got {self.beta}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.max_completion_length < 1:
            raise ValueError(f"max_completion_length must be >= 1, got {self.max_completion_length}")


def prompts(data: TraceData, prompt: PromptFormat) -> list[dict[str, Any]]:
    seen, rows = set(), []
    for trace in data.traces:
        if trace.question not in seen:
            seen.add(trace.question)
            rows.append({"prompt": prompt.messages(trace.question)})
    return rows


@functools.cache
def opd_trainer_class():
    try:
        from trl import DistillationTrainer
    except ImportError:
        raise RdistillError("opd needs TRL's DistillationTrainer (the suite passed with trl 1.16.0): "
                            "pip install -U 'trl>=1.16'") from None

    class OPDTrainer(DistillationTrainer):
        def __init__(self, *args, token_meter=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.token_meter = token_meter

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if self.token_meter is not None and model.training and "completion_mask" in inputs:
                mask = inputs["completion_mask"]
                tokens = int(self.accelerator.gather(mask.sum()).sum()) + int(inputs["prompt_mask"].sum())
                self.token_meter.add(tokens)
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    return OPDTrainer


def run(data: TraceData, settings: TrainSettings, options: OPDOptions, on_progress=None) -> core.TrainResult:
    from datasets import Dataset
    from peft import PeftModel

    trainer_class = opd_trainer_class()  # a trl without on-policy distillation fails here, naming the fix
    from trl import DistillationConfig

    from rdistill.models import load_causal_lm
    from rdistill.train.callbacks import MetricsFile
    from rdistill.train.kd import check_same_vocabulary
    from rdistill.train.pair_core import _ExtraColumns, _pair_reporter_class, _printers, training_arguments
    from rdistill.train.quiet import quiet_libraries
    from rdistill.train.run_record import stage_record, write_run_record
    from rdistill.train.saving import save_student
    from rdistill.train.tokenize import TokenizedStage, ensure_chat_template
    from rdistill.train.trainer import TokenMeter

    settings.validate()
    prompt = PromptFormat(settings.system_prompt)
    rows = prompts(data, prompt)
    if not rows:
        raise RdistillError(f"{data.path}: no questions to train on")
    recipe = core.Recipe("opd", SUMMARY, [core.Stage(STAGE, [])], prompt, asdict(options))
    out = settings.output_dir
    process = core._process_state(out)
    core._check_output_dir(out, settings.resume)
    with quiet_libraries():
        model, tokenizer = core.load_student(settings)
        template = ensure_chat_template(tokenizer)
        tokenizer.padding_side = "left"  # the student generates from a batch of prompts
        teacher, teacher_tokenizer = load_causal_lm(options.teacher, dtype="float32", device="cpu")
        check_same_vocabulary(teacher_tokenizer, tokenizer, options.teacher, settings.student)
        prompt_tokens = sum(len(tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True)) for r in rows)
        stage = TokenizedStage([], len(rows), 0, prompt_tokens, 0)
        [folder] = core._stage_dirs(out, 1)
        metrics = MetricsFile(out)
        _, resume_from, _ = core._plan_resume(process, recipe, settings, data, [stage], [folder], metrics)
        meter = TokenMeter()
        reporter = _pair_reporter_class()(_ExtraColumns(metrics), meter, 1, 1, 0, on_progress, METRIC_KEYS)
        config = DistillationConfig(**training_arguments(settings, folder), beta=options.beta,
                                    temperature=options.temperature,
                                    max_completion_length=options.max_completion_length, remove_unused_columns=False)
        peft_config = core.lora_config(settings) if settings.lora and not isinstance(model, PeftModel) else None
        trainer = trainer_class(model=model, teacher_model=teacher, args=config,
                                      train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                                      callbacks=[reporter], peft_config=peft_config, token_meter=meter)
        for printer in _printers():
            trainer.remove_callback(printer)
        steps = core._start_first_stage(trainer, resume_from, None)
        metrics.close()
        process.wait_for_everyone()
        run_record: dict[str, Any] = {}
        if process.is_main_process:
            tokenizer.padding_side = "right"
            outputs = save_student(trainer.model, tokenizer, out, student=settings.student, merged=settings.save_merged)
            run_record = write_run_record(recipe, settings, data, [stage],
                                          [stage_record(STAGE, stage, settings.epochs, steps)], template,
                                          metrics.records(), outputs)
        process.wait_for_everyone()
    summary = run_record.get("metrics", {})
    return core.TrainResult(out, summary.get("final_loss"), summary.get("tokens_per_s"), steps, run_record)


METHOD = Method("opd", SUMMARY, run, OPDOptions)
