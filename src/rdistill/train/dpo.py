"""`dpo`: Direct Preference Optimization (Rafailov et al., 2023) on the contrastive strategy's pairs, through TRL.

TRL's DPOTrainer does the work: its sigmoid loss −log σ(β[(logπ(c) − logπ_ref(c)) − (logπ(r) − logπ_ref(r))])
over the summed reply log-probs, with β the `beta` option (higher: stay closer to the reference). The reference is the
student before training: with LoRA, the same weights with the adapter switched off (TRL's way with peft, no second
model in memory); with full fine-tuning, a frozen copy made before the first step, so --resume still compares with
the untrained student rather than with a checkpoint.

Pairs are cot_sft's prompts and targets (pairs.py) given to DPOTrainer in TRL's conversational format; it tokenizes
them with the student's chat template the way tokenize.py does (the reply starts where the rendered prompt ends).
Pairs with a side longer than --max-length are dropped beforehand (pair_core.py), so TRL never truncates one.

Unlike `contrastive`, DPO has no LM term: it moves probability between the two sides relative to the reference,
and can lower the chosen side's likelihood too. metrics.jsonl carries TRL's reward margin and accuracy and the
absolute log-prob margin beside the loss.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from pathlib import Path

from rdistill.train import core
from rdistill.train.pair_core import TokenizedPairs, pair_method_run, training_arguments
from rdistill.train.registry import Method
from rdistill.train.settings import TrainSettings
from rdistill.train.trainer import TokenMeter

SUMMARY = "question -> reasoning, preferred over plausible-but-wrong reasoning (DPO on pairs)"
# TRL's log keys -> metrics.jsonl columns (logp_margin is derived from the two logps by the reporter).
METRIC_KEYS = {"rewards/margins": "reward_margin", "rewards/accuracies": "reward_accuracy",
               "logps/chosen": "logp_chosen", "logps/rejected": "logp_rejected"}


@dataclass(frozen=True)
class DPOOptions:
    beta: float = 0.1  # TRL's default and the paper's usual value

    def __post_init__(self):
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be a positive number, got {self.beta}")


@functools.cache
def dpo_trainer_class():
    from trl import DPOTrainer

    class CountingDPOTrainer(DPOTrainer):
        """DPOTrainer that counts the real tokens it trains on, for tokens/s in metrics.jsonl like every method."""

        def __init__(self, *args, token_meter, **kwargs):
            super().__init__(*args, **kwargs)
            self.token_meter = token_meter

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model.training:
                real = inputs["attention_mask"].sum().to(self.accelerator.device)
                self.token_meter.add(int(self.accelerator.gather(real).sum()))
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    return CountingDPOTrainer


def build_trainer(model, tokenizer, tokenized: TokenizedPairs, settings: TrainSettings, options: DPOOptions,
                  output_dir: Path, callbacks=(), token_meter=None):
    from datasets import Dataset
    from peft import PeftModel
    from trl import DPOConfig

    config = DPOConfig(**training_arguments(settings, output_dir), beta=options.beta,
                       max_length=None)  # long pairs are dropped already: TRL must not cut any
    peft_config = core.lora_config(settings) if settings.lora and not isinstance(model, PeftModel) else None
    reference = None
    if not settings.lora:
        # Before the trainer patches or wraps the model: a plain copy of the untrained student.
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    return dpo_trainer_class()(
        model=model, ref_model=reference, args=config,
        train_dataset=Dataset.from_list([pair.conversational() for pair in tokenized.pairs]),
        processing_class=tokenizer, peft_config=peft_config, callbacks=list(callbacks),
        token_meter=token_meter or TokenMeter())


METHOD = Method("dpo", SUMMARY, pair_method_run("dpo", SUMMARY, build_trainer, METRIC_KEYS),
                DPOOptions, pairwise=True)
