"""`contrastive`: learn the teacher's correct reasoning, and rank it above plausible-but-wrong reasoning.

For each pair of the contrastive strategy (pairs.py), with logp(y) the sum of the log-probabilities of the reply's
tokens (their mean with `normalize`):

    loss = LM(chosen) + weight * max(0, margin - (logp(chosen) - logp(rejected)))

LM(chosen) is cot_sft's completion-only loss on the chosen side, so the student still learns to write reasoning; the
hinge (SLiC's calibration loss, Zhao et al. 2023) pushes the wrong trace below the right one until they are `margin`
nats apart, and then stops pushing: unlike DPO it never drives a negative's probability towards zero. Summed
log-probs suit rewritten negatives, which copy the chosen trace up to a planted error: the shared tokens cancel and the
difference sits on the error; the mean (`normalize`) compares replies of very different lengths more fairly.

Both terms are normalised over the whole accumulated batch, as DistillTrainer does (trainer.py): LM over its chosen
completion tokens, the hinge over its pairs, so gradient accumulation and several processes give one big batch's
gradient. The trainer is DistillTrainer with this loss and a collator that stacks [chosen rows; rejected rows].
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

from rdistill.train import core
from rdistill.train.pair_core import TokenizedPairs, pair_method_run, training_arguments
from rdistill.train.registry import Method
from rdistill.train.settings import TrainSettings
from rdistill.train.tokenize import IGNORE

SUMMARY = "question -> reasoning, ranked above plausible-but-wrong reasoning (LM loss + margin loss on pairs)"
# The trainer's log keys -> metrics.jsonl columns.
METRIC_KEYS = {"lm_loss": "lm_loss", "margin_loss": "margin_loss", "logps/chosen": "logp_chosen",
               "logps/rejected": "logp_rejected", "logps/margin": "logp_margin", "logps/accuracy": "pair_accuracy"}


@dataclass(frozen=True)
class ContrastiveOptions:
    margin: float = 1.0  # nats (per token with `normalize`) by which chosen must beat rejected before the hinge rests
    weight: float = 1.0  # of the margin term against the LM term
    normalize: bool = False  # compare mean token log-probs instead of sums

    def __post_init__(self):
        for name in ("margin", "weight"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a number >= 0, got {value}")


def contrastive_loss(token_logps, mask, *, margin: float, weight: float, normalize: bool, chosen_tokens=None,
                     pairs=None):
    """The loss of a batch of rows [chosen_1..chosen_B, rejected_1..rejected_B], and its parts.

    `token_logps[i, t]` is the log-probability of row i's label at t+1 (zero off the reply), `mask` where it counts.
    `chosen_tokens` and `pairs` normalise the two terms (default: this batch's own counts)."""
    import torch

    sums = token_logps.float().sum(dim=-1)  # a bf16 sum over hundreds of tokens would be off by whole nats
    lengths = mask.sum(dim=-1)
    seq = sums / lengths.clamp(min=1) if normalize else sums
    chosen, rejected = seq.chunk(2)
    hinge = torch.relu(margin - (chosen - rejected))
    n_pairs = chosen.shape[0]
    chosen_tokens = lengths[:n_pairs].sum() if chosen_tokens is None else chosen_tokens
    pairs = n_pairs if pairs is None else pairs
    lm = -sums[:n_pairs].sum() / torch.as_tensor(chosen_tokens, dtype=sums.dtype, device=sums.device).clamp(min=1)
    margin_term = hinge.sum() / torch.as_tensor(pairs, dtype=sums.dtype, device=sums.device).clamp(min=1)
    parts = {"lm": lm, "margin": margin_term, "chosen": chosen.detach(), "rejected": rejected.detach()}
    return lm + weight * margin_term, parts


class PairCollator:
    """A batch of B pairs -> 2B right-padded rows, the chosen sides first (the layout TRL's preference trainers use)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, rows):
        import torch
        from trl.trainer.utils import pad

        ids = [torch.tensor(r[f"{side}_input_ids"]) for side in ("chosen", "rejected") for r in rows]
        labels = [torch.tensor(r[f"{side}_labels"]) for side in ("chosen", "rejected") for r in rows]
        return {"input_ids": pad(ids, padding_value=self.pad_token_id),
                "attention_mask": pad([torch.ones_like(x) for x in ids], padding_value=0),
                "labels": pad(labels, padding_value=IGNORE),
                "num_real_tokens": torch.tensor([sum(len(x) for x in ids)])}


@functools.cache
def contrastive_trainer_class():
    import torch

    from rdistill.train.trainer import distill_trainer_class

    class ContrastiveTrainer(distill_trainer_class()):
        def __init__(self, *args, pair_options: ContrastiveOptions, **kwargs):
            super().__init__(*args, **kwargs)
            self.pair_options = pair_options

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            real_tokens = inputs.pop("num_real_tokens", None)
            if real_tokens is not None and model.training:
                self.token_meter.add(int(self.accelerator.gather(real_tokens.to(self.accelerator.device)).sum()))
            inputs["use_cache"] = False
            outputs = model(**inputs, fused_lm_head=True)
            if num_items_in_batch is None:  # not counted over the accumulated batch: this micro-batch stands in
                steps = getattr(self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps)
                n_pairs = outputs.label_mask.shape[0] // 2
                tokens, pairs = outputs.label_mask[:n_pairs].sum() * steps, n_pairs * steps
            else:
                tokens, pairs = num_items_in_batch
            options = self.pair_options
            loss, parts = contrastive_loss(outputs.log_probs, outputs.label_mask, margin=options.margin,
                                           weight=options.weight, normalize=options.normalize,
                                           chosen_tokens=tokens, pairs=pairs)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients; the normalisers were global
            self._record(parts, model.training)
            return (loss, outputs) if return_outputs else loss

        def _record(self, parts, training: bool) -> None:
            chosen, rejected = self.accelerator.gather((parts["chosen"], parts["rejected"]))
            metrics = self._metrics["train" if training else "eval"]
            metrics["lm_loss"].append(parts["lm"].item())
            metrics["margin_loss"].append(parts["margin"].item())
            metrics["logps/chosen"].append(chosen.mean().item())
            metrics["logps/rejected"].append(rejected.mean().item())
            metrics["logps/margin"].append((chosen - rejected).mean().item())
            metrics["logps/accuracy"].append((chosen > rejected).float().mean().item())

        def _get_num_items_in_batch(self, batch_samples, device):
            """(chosen completion tokens, pairs) over the accumulated batch (and every process)."""
            tokens = sum((b["labels"][: len(b["labels"]) // 2, 1:] != IGNORE).sum() for b in batch_samples)
            pairs = sum(len(b["labels"]) // 2 for b in batch_samples)
            counts = torch.stack([torch.as_tensor(tokens), torch.as_tensor(pairs)]).to(device)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                counts = self.accelerator.gather(counts).view(-1, 2).sum(dim=0)
            return counts[0], counts[1]

    return ContrastiveTrainer


def build_trainer(model, tokenizer, tokenized: TokenizedPairs, settings: TrainSettings, options: ContrastiveOptions,
                  output_dir: Path, callbacks=(), token_meter=None):
    """A ContrastiveTrainer over tokenized pairs; peft wraps the model on first use, as in core.build_trainer."""
    from datasets import Dataset
    from peft import PeftModel
    from trl import SFTConfig

    config = SFTConfig(**training_arguments(settings, output_dir), remove_unused_columns=False,
                       dataset_kwargs={"skip_prepare_dataset": True}, max_length=None, packing=False)
    peft_config = core.lora_config(settings) if settings.lora and not isinstance(model, PeftModel) else None
    return contrastive_trainer_class()(
        model=model, args=config, train_dataset=Dataset.from_list(tokenized.rows), processing_class=tokenizer,
        data_collator=PairCollator(tokenizer.pad_token_id), peft_config=peft_config, callbacks=list(callbacks),
        token_meter=token_meter, pair_options=options)


METHOD = Method("contrastive", SUMMARY, pair_method_run("contrastive", SUMMARY, build_trainer, METRIC_KEYS),
                ContrastiveOptions, pairwise=True)
