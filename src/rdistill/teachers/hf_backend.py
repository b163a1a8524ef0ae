"""`hf:ORG/NAME`, `hf:DIR` (a trained student) and `hf:offline:NAME` served in-process through transformers,
with batched generation and white-box access (per-token top-k logprobs, `sequence_logprob`).

Batching: prompts are rendered with the model's chat template, left-padded to one length and decoded together by
`model.generate`. Every row keeps its own sampling parameters, stop strings and `max_tokens`: one logits
processor picks each row's next token itself (greedy, or temperature + top-p sampling) and hands generate a
one-hot score, so generate's own argmax just follows it; one stopping criterion ends each row on EOS, a stop
string or its token limit.

Reproducibility: a seeded request (`request.effective_seed`) samples from its own `torch.Generator`, one draw per
generated token, so the random numbers it sees do not depend on which other requests share its batch or their
order. Its output is therefore the same alone or in any batch as long as its logits are the same; padding to a
different batch length can change logits in the last bits, which can flip a choice only at a near-tie. Same
batch, same device and dtype: identical output. Unseeded sampling uses torch's global RNG (not reproducible).

Generation runs in a worker thread behind a lock: one model, one batch at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from rdistill.errors import RdistillError
from rdistill.teachers.base import Completion, Request, SamplingParams, TokenLogprob

log = logging.getLogger(__name__)

Messages = Sequence[tuple[str, str]] | Sequence[dict[str, str]]


class HFBackend:
    provider = "hf"
    local = True
    default_concurrency = 1  # batches are serialised behind a lock; parallelism comes from batch_size

    def __init__(self, model: str, *, batch_size: int = 8, device: str | None = None, dtype: Any = None,
                 model_name: str | None = None):
        if batch_size < 1:
            raise RdistillError("batch_size must be at least 1")
        self.spec = model if model.startswith("offline:") else f"hf:{model}"
        self.model = model_name or _model_identity(model)
        self.batch_size = batch_size
        self._device, self._dtype = device, dtype
        self._lm = None
        self._tokenizer = None
        self._lock = threading.Lock()

    # -- the Backend protocol --------------------------------------------------------------------------

    async def complete(self, request: Request) -> Completion:
        return (await self.complete_batch([request]))[0]

    async def complete_batch(self, requests: Sequence[Request]) -> list[Completion]:
        """One completion per request, in order, generated batch_size rows at a time."""
        return await asyncio.to_thread(self._complete_batch_sync, list(requests))

    async def aclose(self) -> None:
        await asyncio.to_thread(self._release)

    def _release(self) -> None:
        with self._lock:  # waits for a running batch instead of pulling the model from under it
            on_gpu = self._lm is not None and self._lm.device.type == "cuda"
            self._lm = self._tokenizer = None
        if on_gpu:
            import torch

            torch.cuda.empty_cache()

    # -- white-box helpers ------------------------------------------------------------------------------

    def sequence_logprob(self, prompt_messages: Messages, continuation: str) -> float:
        """log P(continuation | chat prompt rendered with the generation prompt), summed over its tokens."""
        return self.sequence_logprobs([(prompt_messages, continuation)])[0]

    def sequence_logprobs(self, pairs: Sequence[tuple[Messages, str]]) -> list[float]:
        """`sequence_logprob` for many (messages, continuation) pairs, batch_size forward passes at a time."""
        return self._in_batches(pairs, self._score_batch)

    def prompt_ids(self, messages: Messages) -> list[int]:
        """Token ids of the chat prompt the model is asked to continue (what `prompt_tokens` counts)."""
        with self._lock:
            self._load()
            return _render_prompt(self._tokenizer, _message_dicts(messages))

    # -- internals --------------------------------------------------------------------------------------

    def _load(self):
        if self._lm is None:
            from transformers import GenerationConfig

            from rdistill.models import load_causal_lm

            lm, tokenizer = load_causal_lm(self.spec, dtype=self._dtype, device=self._device)
            # Checkpoints ship sampling defaults (Qwen: temperature 0.7, repetition_penalty 1.05) that generate
            # would apply under ours and that would skew the logprobs; keep only the special token ids.
            old = lm.generation_config
            lm.generation_config = GenerationConfig(bos_token_id=old.bos_token_id, eos_token_id=old.eos_token_id,
                                                    pad_token_id=old.pad_token_id)
            self._lm, self._tokenizer = lm, tokenizer
        return self._lm, self._tokenizer

    def _complete_batch_sync(self, requests: list[Request]) -> list[Completion]:
        return self._in_batches(requests, self._generate)

    def _in_batches(self, items: Sequence, run_batch) -> list:
        """Load once, then run `run_batch` over `batch_size` slices under the lock (one model, one thread)."""
        with self._lock:
            self._load()
            out: list = []
            for start in range(0, len(items), self.batch_size):
                out.extend(run_batch(items[start:start + self.batch_size]))
            return out

    def _eos_ids(self) -> list[int]:
        ids = self._lm.generation_config.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if self._tokenizer.eos_token_id is not None and self._tokenizer.eos_token_id not in ids:
            ids.append(self._tokenizer.eos_token_id)
        return ids

    def _generate(self, requests: list[Request]) -> list[Completion]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        for r in requests:
            if r.params.max_tokens < 1:
                raise RdistillError(f"max_tokens must be at least 1, got {r.params.max_tokens}")
        lm, tokenizer = self._lm, self._tokenizer
        started = time.perf_counter()
        prompts = [_render_prompt(tokenizer, r.message_dicts()) for r in requests]
        input_ids, attention_mask = _left_pad(prompts, tokenizer.pad_token_id, lm.device)
        eos_ids = self._eos_ids()
        chooser = _RowTokenChooser([r.params for r in requests], [r.effective_seed for r in requests], lm.device)
        stopper = _RowStopper(input_ids.shape[1], [r.params for r in requests], eos_ids, tokenizer)
        config = GenerationConfig(max_new_tokens=max(r.params.max_tokens for r in requests), do_sample=False,
                                  eos_token_id=eos_ids, pad_token_id=tokenizer.pad_token_id)
        with torch.inference_mode():
            sequences = lm.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config,
                                    logits_processor=LogitsProcessorList([chooser]),
                                    stopping_criteria=StoppingCriteriaList([stopper]))
        share = (time.perf_counter() - started) / len(requests)  # so the ledger's summed seconds = compute time
        new_tokens = sequences[:, input_ids.shape[1]:].tolist()
        completions = []
        for row, request in enumerate(requests):
            n, reason = stopper.finished.get(row, (len(new_tokens[row]), "length"))
            if n and new_tokens[row][n - 1] in eos_ids:
                n -= 1  # the end-of-turn token is not part of the completion (llama.cpp and OpenAI count so too)
            text = _cut_at_stop(tokenizer.decode(new_tokens[row][:n], skip_special_tokens=True), request.params.stop)
            completions.append(Completion(
                text=text, prompt_tokens=len(prompts[row]), completion_tokens=n, finish_reason=reason,
                logprobs=chooser.logprobs(row, n, tokenizer) if request.params.top_logprobs > 0 else None,
                seconds=share))
        return completions

    def _score_batch(self, pairs: Sequence[tuple[Messages, str]]) -> list[float]:
        import torch

        lm, tokenizer = self._lm, self._tokenizer
        rows = [(_render_prompt(tokenizer, _message_dicts(m)), tokenizer(c, add_special_tokens=False)["input_ids"])
                for m, c in pairs]
        length = max(len(p) + len(c) for p, c in rows)
        # Right padding: real tokens keep positions 0..n-1 without passing position ids.
        input_ids = torch.full((len(rows), length), tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, (p, c) in enumerate(rows):
            input_ids[i, :len(p) + len(c)] = torch.tensor(p + c)
            attention_mask[i, :len(p) + len(c)] = 1
        with torch.inference_mode():
            logits = lm(input_ids=input_ids.to(lm.device), attention_mask=attention_mask.to(lm.device)).logits
        scores = []
        for i, (p, c) in enumerate(rows):
            if not c:
                scores.append(0.0)
                continue
            # Logits at position t predict token t+1: the continuation is predicted from len(p)-1 on.
            logp = logits[i, len(p) - 1:len(p) - 1 + len(c)].float().log_softmax(-1)
            target = torch.tensor(c, device=logp.device)[:, None]
            scores.append(float(logp.gather(-1, target).sum()))
        return scores


class _RowTokenChooser:
    """A logits processor that picks every row's next token with that row's own parameters and generator,
    records its logprobs under the model's raw distribution, and returns a one-hot score for generate."""

    def __init__(self, params: list[SamplingParams], seeds: list[int | None], device):
        import torch

        self.params = params
        self.generators = [torch.Generator(device=device).manual_seed(s) if s is not None else None for s in seeds]
        self.top_k = max(p.top_logprobs for p in params)
        self.steps: list[tuple[Any, Any, Any, Any]] = []  # per step: chosen ids, their logprobs, top ids, top logprobs

    def __call__(self, input_ids, scores):
        import torch

        logprobs = scores.float().log_softmax(-1)
        chosen = torch.stack([self._choose(logprobs[row], p, g)
                              for row, (p, g) in enumerate(zip(self.params, self.generators))])
        if self.top_k:
            top = logprobs.topk(self.top_k, dim=-1)
            self.steps.append((chosen.cpu(), logprobs.gather(-1, chosen[:, None])[:, 0].cpu(),
                               top.indices.cpu(), top.values.cpu()))
        one_hot = torch.full_like(scores, float("-inf"))
        return one_hot.scatter_(1, chosen[:, None], 0.0)

    @staticmethod
    def _choose(logprobs, params: SamplingParams, generator):
        import torch

        if params.temperature <= 0:
            return logprobs.argmax()
        probs = (logprobs / params.temperature).softmax(-1)
        if params.top_p < 1.0:
            sorted_probs, order = probs.sort(descending=True)
            # Keep the smallest prefix whose mass reaches top_p (always at least the most likely token).
            outside = sorted_probs.cumsum(-1) - sorted_probs >= params.top_p
            sorted_probs[outside] = 0.0
            return order[torch.multinomial(sorted_probs, 1, generator=generator)[0]]
        return torch.multinomial(probs, 1, generator=generator)[0]

    def logprobs(self, row: int, n: int, tokenizer) -> list[TokenLogprob]:
        k = self.params[row].top_logprobs
        out = []
        for chosen, chosen_lp, top_ids, top_lps in self.steps[:n]:
            ids = [int(t) for t in top_ids[row, :k]]
            top = [(tokenizer.decode([t]), float(v)) for t, v in zip(ids, top_lps[row, :k])]
            out.append(TokenLogprob(tokenizer.decode([int(chosen[row])]), float(chosen_lp[row]), top,
                                    int(chosen[row]), ids))
        return out


class _RowStopper:
    """A stopping criterion that ends each row on EOS, on one of its stop strings, or at its own max_tokens,
    and records (tokens generated, finish_reason) per row."""

    def __init__(self, prompt_length: int, params: list[SamplingParams], eos_ids: list[int], tokenizer):
        self.prompt_length = prompt_length
        self.params = params
        self.eos_ids = set(eos_ids)
        self.tokenizer = tokenizer
        self.finished: dict[int, tuple[int, str]] = {}

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        generated = input_ids.shape[1] - self.prompt_length
        for row, params in enumerate(self.params):
            if row in self.finished:
                continue
            if int(input_ids[row, -1]) in self.eos_ids:
                self.finished[row] = (generated, "stop")
            elif params.stop and self._has_stop(input_ids[row, self.prompt_length:], params.stop):
                self.finished[row] = (generated, "stop")
            elif generated >= params.max_tokens:
                self.finished[row] = (generated, "length")
        done = [row in self.finished for row in range(len(self.params))]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def _has_stop(self, tokens, stops: Sequence[str]) -> bool:
        # Decoding the whole continuation each step is simple and still cheap next to a forward pass.
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return any(s in text for s in stops)


def _message_dicts(messages: Messages) -> list[dict[str, str]]:
    return [m if isinstance(m, dict) else {"role": m[0], "content": m[1]} for m in messages]


def _render_prompt(tokenizer, messages: list[dict[str, str]]) -> list[int]:
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # The template already wrote any BOS it wants; adding special tokens again would double it.
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    # A base model (no chat template): plain text, the way such models are prompted.
    return tokenizer("\n\n".join(m["content"] for m in messages))["input_ids"]


def _left_pad(prompts: list[list[int]], pad_id: int, device):
    import torch

    length = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), length), dtype=torch.long)
    for i, p in enumerate(prompts):
        input_ids[i, length - len(p):] = torch.tensor(p, dtype=torch.long)
        attention_mask[i, length - len(p):] = 1
    return input_ids.to(device), attention_mask.to(device)


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return text[:min(cuts)] if cuts else text


def _model_identity(model: str) -> str:
    """The name the cache and ledger know: the hub id or catalog name as given; for a folder, its name plus a
    digest of its files' sizes and mtimes, so retraining into the same folder never hits an old answer."""
    path = Path(model).expanduser()
    if not path.is_dir():
        return model
    digest = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
        info = f.stat()
        digest.update(f"{f.name}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return f"{path.resolve().name}@{digest.hexdigest()[:12]}"
