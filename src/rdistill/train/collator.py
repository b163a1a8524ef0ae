"""Batches for the three layouts a run can use, built on TRL's DataCollatorForLanguageModeling.

- "padded": one example per row, right-padded, with an attention mask (no packing).
- "packed_rows": one packed row per batch row, no attention mask, `position_ids` restarting at 0 for every packed
  example. With no mask, transformers reads the restarts as sequence boundaries and builds a block-diagonal causal
  mask (masking_utils.find_packed_sequence_indices), so packed examples never attend to each other under SDPA and
  eager attention. Rows stay separate, so attention costs rows x length^2, the same as padded batches of that length.
  The cache must be off in the forward (compute_loss passes use_cache=False): with a cache the detection is skipped.
- "flat": TRL's padding-free layout, every row concatenated into one with cu_seq_lens, for flash-attention varlen
  kernels. Transformers' flash path only reads packed boundaries from a batch of one row, hence the flattening.

Every layout also carries `num_real_tokens` (non-padding tokens, for tokens/s) and, for weighted methods,
`loss_weights` aligned with `labels`; DistillTrainer.compute_loss takes both out before the forward.
"""

from __future__ import annotations

from typing import Any

LAYOUTS = ("padded", "packed_rows", "flat")


def layout_for(packing: bool, attn_implementation: str | None) -> str:
    if not packing:
        return "padded"
    return "flat" if attn_implementation and "flash" in attn_implementation else "packed_rows"


class DistillCollator:
    def __init__(self, pad_token_id: int, layout: str = "padded"):
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.layout = layout
        self._base = DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=layout == "flat",
                                                     return_position_ids=layout == "packed_rows")

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch
        from trl.trainer.utils import pad

        keys = [k for k in ("input_ids", "labels", "seq_lengths") if k in examples[0]]
        batch = self._base([{k: e[k] for k in keys} for e in examples])
        if self.layout == "packed_rows":
            del batch["attention_mask"]  # a 2D mask would switch off the packed-sequence (block-diagonal) mask
            # The first token of each packed example would be "predicted" from the end of the previous one.
            batch["labels"][batch["position_ids"] == 0] = -100
        if "loss_weights" in examples[0]:
            weights = [torch.tensor(e["loss_weights"], dtype=torch.float32) for e in examples]
            if self.layout == "flat":
                weights = [torch.cat(weights)]
            batch["loss_weights"] = pad(weights, padding_value=0.0, padding_side="right")
            batch["loss_weights"][batch["labels"] == -100] = 0.0
        if "kd_ids" in examples[0]:  # logit KD (kd.py): the teacher's top-k at each position, rows of k per token
            if self.layout != "padded":
                raise ValueError("the teacher's top-k columns are batched in the padded layout only")
            batch["kd_ids"] = pad([torch.tensor(e["kd_ids"], dtype=torch.long) for e in examples],
                                  padding_value=-1, padding_side="right")
            batch["kd_logprobs"] = pad([torch.tensor(e["kd_logprobs"], dtype=torch.float32) for e in examples],
                                       padding_value=0.0, padding_side="right")
        batch["num_real_tokens"] = torch.tensor([sum(len(e["input_ids"]) for e in examples)])
        return batch
