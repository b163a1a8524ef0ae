"""How strongly a model prefers the right reasoning to the wrong one, on held-out pairs: before and after training.

For each pair, margin = logp(chosen) − logp(rejected), with logp the sum (or, `normalize`, the mean) of the reply's
token log-probabilities given the prompt, the quantity the contrastive loss and DPO act on. The report shows the mean
margin and the share of pairs with a positive one (the model ranks the right trace first), for the untrained student
and for each pair-trained student, on pairs none of them trained on.

Each sequence is scored alone (no padding to get wrong) and only the reply's positions are projected through the LM
head (`logits_to_keep`), so a large vocabulary costs one reply's worth of logits, not a batch's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from rdistill.train.examples import Example
from rdistill.train.pairs import Pair, load_pairs
from rdistill.train.prompting import PromptFormat, load_prompt_format
from rdistill.train.tokenize import IGNORE, ensure_chat_template, tokenize_example


@dataclass(frozen=True)
class PairMargin:
    pairs: int
    mean_margin: float
    positive_share: float  # pairs whose chosen side is the more likely one
    mean_logp_chosen: float
    mean_logp_rejected: float
    normalized: bool  # mean token log-probs rather than sums

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def sequence_logp(model, tokenizer, example: Example, *, normalize: bool = False) -> float:
    """log p(reply | prompt) under `model`, rendered and tokenized exactly as training renders it."""
    import torch

    row = tokenize_example(tokenizer, example)
    ids, labels = row["input_ids"], row["labels"]
    start = next(i for i, label in enumerate(labels) if label != IGNORE)
    device = next(model.parameters()).device
    with torch.no_grad():
        # Logits at position t score token t+1: the reply's tokens start..end need positions start-1..end-2.
        logits = model(input_ids=torch.tensor([ids], device=device), use_cache=False,
                       logits_to_keep=len(ids) - start + 1).logits[0, :-1].float()
    targets = torch.tensor(ids[start:], device=logits.device)
    token_logps = torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None]).squeeze(-1)
    total = float(token_logps.sum())
    return total / len(targets) if normalize else total


def measure_pair_margin(model, tokenizer, pairs: Sequence[Pair], *, normalize: bool = False) -> PairMargin:
    """The pair margin of a loaded model (put in eval mode for the measurement, then back)."""
    if not pairs:
        raise ValueError("no pairs to measure")
    was_training = model.training
    model.eval()
    try:
        chosen = [sequence_logp(model, tokenizer, p.chosen_example(), normalize=normalize) for p in pairs]
        rejected = [sequence_logp(model, tokenizer, p.rejected_example(), normalize=normalize) for p in pairs]
    finally:
        model.train(was_training)
    margins = [c - r for c, r in zip(chosen, rejected)]
    n = len(pairs)
    return PairMargin(n, sum(margins) / n, sum(m > 0 for m in margins) / n, sum(chosen) / n, sum(rejected) / n,
                      normalize)


def student_pair_margin(student: str | Path, traces: str | Path, *, prompt: PromptFormat | None = None,
                        normalize: bool = False, limit: int | None = None, device: str | None = None) -> PairMargin:
    """The pair margin of a model string or student folder on a pair trace file.

    The pairs are asked with `prompt`, by default the one the student folder was trained with (rdistill_train.json;
    a plain prompt for a model rdistill did not train). To measure the untrained student "before", pass the trained
    student's prompt format, so both are asked the same way."""
    from rdistill.models import load_causal_lm, parse_model_spec
    from rdistill.train.quiet import quiet_libraries

    if prompt is None:
        kind, target = parse_model_spec(str(student))
        prompt = load_prompt_format(target) if kind == "folder" else PromptFormat()
    pairs = load_pairs(traces, prompt).pairs[:limit]
    with quiet_libraries():
        model, tokenizer = load_causal_lm(str(student), device=device)
    ensure_chat_template(tokenizer)  # a base model is measured in the plain layout training would give it
    return measure_pair_margin(model, tokenizer, pairs, normalize=normalize)
