"""DistillTrainer: TRL's SFTTrainer with per-example loss weights, packed rows kept apart, and a real-token count.

The class is built on first use (`distill_trainer_class()`) so that importing rdistill never imports TRL or torch.

The loss is TRL's chunked "fused LM head" negative log-likelihood (no full logits tensor), summed over completion
tokens and divided by the accumulated batch's normaliser, so gradient accumulation and several processes give the
same gradient as one big batch:
- unweighted: the number of completion tokens (TRL's and transformers' own convention, a token-level mean);
- weighted (rows carry `loss_weights`, each example's weight spread over its completion tokens): the sum of the
  weights, i.e. a weighted mean over examples of each example's mean token loss. Step-by-step uses this so that
  lambda sets the rationale task's share of the loss however long rationales are compared with labels.
"""

from __future__ import annotations

import functools


class TokenMeter:
    """Counts the real (non-padding) tokens trained on, summed over processes, and how fast they go."""

    def __init__(self):
        import time

        self._clock = time.perf_counter
        self.total = 0
        self._since_mark = 0
        self._mark = self._clock()

    def restart_clock(self) -> None:
        self._since_mark, self._mark = 0, self._clock()

    def add(self, tokens: int) -> None:
        self.total += tokens
        self._since_mark += tokens

    def take_interval(self) -> tuple[int, float]:
        """Tokens and seconds since the previous call (or restart), and start a new interval."""
        now = self._clock()
        tokens, seconds = self._since_mark, now - self._mark
        self._since_mark, self._mark = 0, now
        return tokens, seconds


@functools.cache
def distill_trainer_class():
    import torch
    from trl import SFTTrainer

    class DistillTrainer(SFTTrainer):
        # compute_loss divides by the whole accumulated batch's normaliser, so Trainer must not divide again.
        loss_is_scaled_for_ga = True

        def __init__(self, *args, token_meter: TokenMeter | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.token_meter = token_meter or TokenMeter()

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            weights = inputs.pop("loss_weights", None)
            real_tokens = inputs.pop("num_real_tokens", None)
            if real_tokens is not None and model.training:
                self.token_meter.add(int(self.accelerator.gather(real_tokens.to(self.accelerator.device)).sum()))
            # With a KV cache, transformers skips packed-sequence detection and packed examples see each other.
            # TRL's fused head turns the cache off too; said here as well, since packing depends on it.
            inputs["use_cache"] = False
            outputs = model(**inputs, fused_lm_head=True)
            nll = -outputs.log_probs  # (batch, length - 1), zero where the label is -100
            if weights is not None:
                weights = weights[:, 1:].to(nll.dtype)  # log_probs[:, t] scores labels[:, t + 1]
                nll = nll * weights
                local_normaliser = weights.sum()
            else:
                local_normaliser = outputs.label_mask.sum()
            if num_items_in_batch is None:  # Trainer did not count the accumulated batch: this micro-batch stands in
                steps = getattr(self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps)
                normaliser = local_normaliser * steps
            else:
                normaliser = num_items_in_batch
            loss = nll.sum() / torch.as_tensor(normaliser, device=nll.device, dtype=nll.dtype).clamp(min=1e-12)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients; the normaliser was global
            return (loss, outputs) if return_outputs else loss

        def _get_num_items_in_batch(self, batch_samples, device):
            if not batch_samples or "loss_weights" not in batch_samples[0]:
                return super()._get_num_items_in_batch(batch_samples, device)
            total = sum(batch["loss_weights"][:, 1:].sum() for batch in batch_samples).to(device)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                total = self.accelerator.gather(total).sum()
            return total

    return DistillTrainer
