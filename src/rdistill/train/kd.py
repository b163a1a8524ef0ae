"""Classic logit distillation (Hinton et al. 2015) on the teacher's reasoning traces.

The student learns the teacher's tokens (the language-model loss, as cot_sft) and, at every one of those tokens,
the teacher's whole next-token distribution softened by a temperature T:

    loss = (1 - alpha) * NLL(trace tokens) + alpha * T^2 * KL( softmax(teacher / T) || softmax(student / T) )

summed over the completion's tokens and divided by their number (T^2 keeps the gradient's scale as T changes, as
in the paper). Two sources for the teacher's distribution:

- `source: topk` (default): the top-k log-probabilities stored with each trace at generation time
  (`rdistill generate --logprobs K`, a llama-server or hf: teacher), so the teacher never sits in training memory.
  Only k of the vocabulary's probabilities are known, so both distributions are renormalised over those k tokens
  before the KL: p_i = softmax(l_i / T) over the k, q_i = the student's softened probabilities of the same k tokens
  divided by their sum. The teacher's tail mass (1 - the k tokens' probability at T = 1) is dropped; the run records
  its mean (`method_measured.teacher_mass_covered`) so the approximation is visible. With the default k = 20 on
  arithmetic traces it is small.
- `source: dense`: a white-box transformers teacher (`teacher: MODEL`, any model string rdistill loads) run on the
  same token rows beside the student; the KL covers the full vocabulary.

Both need the student and the teacher to share a vocabulary (Qwen2.5-Coder 1.5B -> 0.5B do). It is checked, not
assumed: for top-k, the student's tokenizer must decode the teacher's ids into the trace's text (a mismatch in more
than 5% of the traces stops the run with a message naming both models); for dense, the two
tokenizers' vocabularies must be equal. The student trains on the teacher's exact token sequence either way.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass
from typing import Any

from rdistill.errors import RdistillError
from rdistill.train import core
from rdistill.train.examples import Example, TraceData
from rdistill.train.prompting import PromptFormat
from rdistill.train.registry import Method
from rdistill.train.settings import TrainSettings
from rdistill.train.tokenize import IGNORE

log = logging.getLogger(__name__)

SUMMARY = "question -> the teacher's reasoning tokens, matching its softened next-token distribution (logit KD)"
MAX_MISMATCHED_SHARE = 0.05  # traces whose text the student's tokenizer does not turn into the teacher's ids


@dataclass(frozen=True)
class KDOptions:
    temperature: float = 2.0  # T: softens both distributions
    alpha: float = 0.5  # weight of the distillation term (1 - alpha: the language-model loss on the trace)
    source: str = "topk"  # topk (stored with the traces) or dense (a white-box teacher loaded beside the student)
    teacher: str | None = None  # dense: the teacher's model string (offline:NAME, hf:ID, a folder)

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.source not in ("topk", "dense"):
            raise ValueError(f"source must be topk or dense, got {self.source!r}")
        if self.source == "dense" and not self.teacher:
            raise ValueError("source dense needs teacher=MODEL (the white-box teacher to load)")


# -- examples and rows ------------------------------------------------------------------------------------------

def build_examples(data: TraceData, prompt: PromptFormat) -> list[Example]:
    # The completion is the teacher's text as it wrote it (no answer sentence added): its tokens are what the
    # stored distributions describe.
    return [Example(prompt.messages(trace.question), trace.reasoning, task="kd", trace_index=i)
            for i, trace in enumerate(data.traces)]


class TopKRows:
    """Puts the teacher's ids and top-k into each tokenized row, and counts how well the vocabularies agree."""

    def __init__(self, data: TraceData, k: int):
        self.data, self.k = data, k
        self.rows = self.retokenized_differently = self.mismatched = self.tokens = self.top1_is_token = 0
        self.mass = 0.0

    def __call__(self, tokenizer, example: Example, row: dict[str, list]) -> dict[str, list]:
        import math

        teacher = self.data.traces[example.trace_index].teacher_tokens
        labels = row["labels"]
        start = next(i for i, label in enumerate(labels) if label != IGNORE)
        own = tokenizer(example.completion, add_special_tokens=False)["input_ids"]
        ids = list(row["input_ids"])
        self.rows += 1
        if ids[start:start + len(own)] != own:
            raise RdistillError("the student's chat template changes the reply's text; kd needs it verbatim")
        suffix = ids[start + len(own):]  # the end-of-turn tokens the template adds
        if own != teacher.ids:  # the same text, other token boundaries (or special tokens inside): harmless
            self.retokenized_differently += 1
        if tokenizer.decode(teacher.ids, skip_special_tokens=True) != example.completion:
            self.mismatched += 1  # the student's vocabulary reads the teacher's ids as other text
        ids = ids[:start] + list(teacher.ids) + suffix
        kd_ids = [[-1] * self.k for _ in ids]
        kd_logprobs = [[0.0] * self.k for _ in ids]
        for offset, (top_ids, top_lps) in enumerate(zip(teacher.top_ids, teacher.top_logprobs)):
            kd_ids[start + offset][:len(top_ids[:self.k])] = top_ids[:self.k]
            kd_logprobs[start + offset][:len(top_lps[:self.k])] = top_lps[:self.k]
            self.mass += sum(math.exp(v) for v in top_lps[:self.k])
        self.tokens += len(teacher.ids)
        self.top1_is_token += sum(1 for token, top in zip(teacher.ids, teacher.top_ids) if top and top[0] == token)
        return {**row, "input_ids": ids, "labels": [IGNORE] * start + ids[start:], "kd_ids": kd_ids,
                "kd_logprobs": kd_logprobs}

    def summary(self) -> dict[str, Any]:
        return {"rows": self.rows, "k": self.k, "teacher_tokens": self.tokens,
                "retokenized_differently": self.retokenized_differently, "decoded_differently": self.mismatched,
                "top1_is_the_trace_token": self.top1_is_token / self.tokens if self.tokens else None,
                "teacher_mass_covered": self.mass / self.tokens if self.tokens else None}


def _check_topk_traces(data: TraceData) -> int:
    missing = sum(1 for t in data.traces if t.teacher_tokens is None)
    if missing == len(data.traces):
        raise RdistillError(f"{data.path}: no trace carries the teacher's token log-probabilities; generate the traces "
                            "with `rdistill generate --logprobs 20` (recipe: generate.logprobs: 20), or use "
                            "-O source=dense -O teacher=MODEL")
    if missing:
        raise RdistillError(f"{data.path}: {missing} of {len(data.traces)} traces have no teacher log-probabilities "
                            "(generated without --logprobs); kd with source=topk needs them on every trace")
    return max(len(top) for t in data.traces for top in t.teacher_tokens.top_ids)


def _check_vocabularies(rows: TopKRows, data: TraceData, student: str) -> None:
    if rows.rows and rows.mismatched / rows.rows > MAX_MISMATCHED_SHARE:
        teachers = ", ".join(data.teachers())
        raise RdistillError(
            f"the student's tokenizer ({student}) reads the teacher's token ids as other text in {rows.mismatched} of "
            f"{rows.rows} traces ({teachers}): logit KD needs a teacher and a student that share a "
            "vocabulary (e.g. Qwen2.5 1.5B -> 0.5B); use cot_sft for this pair")


def check_same_vocabulary(teacher_tokenizer, student_tokenizer, teacher: str, student: str) -> None:
    if teacher_tokenizer.get_vocab() != student_tokenizer.get_vocab():
        raise RdistillError(f"the teacher {teacher} ({type(teacher_tokenizer).__name__}, "
                            f"{len(teacher_tokenizer)} tokens) and the student {student} "
                            f"({type(student_tokenizer).__name__}, {len(student_tokenizer)} tokens) do not share a "
                            "vocabulary: logit KD compares their distributions token by token; use cot_sft")


# -- the loss ----------------------------------------------------------------------------------------------------

def topk_kl(student_logits, top_ids, top_logprobs, temperature: float):
    """Per position: KL(teacher || student) over the teacher's top-k tokens, both renormalised over those k and
    softened by `temperature`. student_logits (N, V); top_ids (N, k) with -1 for no entry; top_logprobs (N, k)."""
    import torch

    valid = top_ids >= 0
    student = (student_logits.float() / temperature).log_softmax(-1).gather(-1, top_ids.clamp(min=0))
    student = student.masked_fill(~valid, float("-inf"))
    student = student - student.logsumexp(-1, keepdim=True)
    teacher = (top_logprobs.float() / temperature).masked_fill(~valid, float("-inf"))
    teacher = teacher - teacher.logsumexp(-1, keepdim=True)
    p = teacher.exp()
    terms = torch.where(valid, p * (teacher - student), torch.zeros_like(p))
    return terms.sum(-1)


def dense_kl(student_logits, teacher_logits, temperature: float):
    """Per position: KL(softmax(teacher / T) || softmax(student / T)) over the full vocabulary."""
    vocab = min(student_logits.shape[-1], teacher_logits.shape[-1])  # lm_head rows past the tokenizer's are unused
    student = (student_logits[..., :vocab].float() / temperature).log_softmax(-1)
    teacher = (teacher_logits[..., :vocab].float() / temperature).log_softmax(-1)
    return (teacher.exp() * (teacher - student)).sum(-1)


@functools.cache
def kd_trainer_class():
    import torch

    from rdistill.train.trainer import distill_trainer_class

    class KDTrainer(distill_trainer_class()):
        def __init__(self, *args, kd: KDOptions, teacher_model=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.kd, self.teacher_model = kd, teacher_model

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            real_tokens = inputs.pop("num_real_tokens", None)
            if real_tokens is not None and model.training:
                self.token_meter.add(int(self.accelerator.gather(real_tokens.to(self.accelerator.device)).sum()))
            top_ids, top_logprobs = inputs.pop("kd_ids", None), inputs.pop("kd_logprobs", None)
            labels = inputs.pop("labels")
            outputs = model(**inputs, use_cache=False)
            logits = outputs.logits[:, :-1]  # position t predicts token t + 1
            targets = labels[:, 1:]
            mask = targets != IGNORE
            chosen = logits[mask]
            nll = torch.nn.functional.cross_entropy(chosen.float(), targets[mask], reduction="sum")
            T = self.kd.temperature
            if self.teacher_model is not None:
                with torch.no_grad():
                    teacher_logits = self.teacher_model(**inputs, use_cache=False).logits[:, :-1][mask]
                kl = dense_kl(chosen, teacher_logits, T)
            else:
                has = (top_ids[:, 1:] >= 0).any(-1) & mask  # the end-of-turn tokens have no stored distribution
                kl = topk_kl(logits[has], top_ids[:, 1:][has], top_logprobs[:, 1:][has], T)
            kd_sum = kl.sum() * T * T
            if num_items_in_batch is None:
                steps = getattr(self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps)
                normaliser = mask.sum() * steps
            else:
                normaliser = num_items_in_batch
            normaliser = torch.as_tensor(normaliser, device=nll.device, dtype=nll.dtype).clamp(min=1e-12)
            loss = ((1 - self.kd.alpha) * nll + self.kd.alpha * kd_sum) / normaliser
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            if model.training:
                metrics = self._metrics["train"]
                metrics["lm_loss"].append((nll / mask.sum().clamp(min=1)).item())
                metrics["kd_loss"].append((kd_sum / max(kl.numel(), 1)).item())
            return (loss, outputs) if return_outputs else loss

    return KDTrainer


# -- the method ----------------------------------------------------------------------------------------------------

def recipe(data: TraceData, settings: TrainSettings, options: KDOptions, *, teacher_model=None,
           measured: dict[str, Any] | None = None) -> core.Recipe:
    if settings.packing:
        raise RdistillError("kd trains on unpacked rows (the teacher's top-k rides along each row): set packing: "
                            "false for this method (--no-packing)")
    prompt = PromptFormat(settings.system_prompt)
    rows = TopKRows(data, _check_topk_traces(data)) if options.source == "topk" else None
    return core.Recipe("kd", SUMMARY, [core.Stage("all", build_examples(data, prompt))], prompt,
                       options=asdict(options), decorate_row=rows, trainer_class=kd_trainer_class,
                       trainer_kwargs={"kd": options, "teacher_model": teacher_model}, record=measured or {})


def measure_topk(data: TraceData, settings: TrainSettings, tokenizer) -> dict[str, Any]:
    """Before training: how the stored top-k meets the student's tokenizer (and a refusal if they do not share a
    vocabulary). Cheap: tokenizing, no model."""
    from rdistill.train.tokenize import ensure_chat_template, tokenize_example

    ensure_chat_template(tokenizer)
    rows = TopKRows(data, _check_topk_traces(data))
    for example in build_examples(data, PromptFormat(settings.system_prompt)):
        rows(tokenizer, example, tokenize_example(tokenizer, example))
    _check_vocabularies(rows, data, settings.student)
    return rows.summary()


def run(data: TraceData, settings: TrainSettings, options: KDOptions, on_progress=None) -> core.TrainResult:
    from rdistill.models import load_tokenizer
    from rdistill.train.quiet import quiet_libraries

    with quiet_libraries():
        student_tokenizer = load_tokenizer(settings.student)
    teacher_model, measured = None, None
    if options.source == "dense":
        teacher_model = _load_dense_teacher(options.teacher, settings.student, student_tokenizer)
    else:
        measured = measure_topk(data, settings, student_tokenizer)
        log.info("kd: %s", measured)
    made = recipe(data, settings, options, teacher_model=teacher_model, measured=measured)
    return core.train(made, settings, data, on_progress=on_progress)


def _load_dense_teacher(spec: str, student: str, student_tokenizer):
    from rdistill.models import load_causal_lm
    from rdistill.train.quiet import quiet_libraries

    with quiet_libraries():
        teacher, teacher_tokenizer = load_causal_lm(spec, dtype="float32", device="cpu")
    check_same_vocabulary(teacher_tokenizer, student_tokenizer, spec, student)
    teacher.eval().requires_grad_(False)
    return teacher


METHOD = Method("kd", SUMMARY, run, KDOptions)
