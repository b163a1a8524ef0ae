"""Examples to token rows: the student's chat template, loss on the completion only, optional packing.

Each row holds `input_ids` and `labels`, where `labels` is -100 over every prompt token, so the loss covers only the
completion (the assistant reply and its end-of-turn token). The completion starts where the prompt rendered alone
(with the generation prompt) and the whole conversation stop agreeing, as in TRL's own prompt-completion path.

We tokenize here rather than in SFTTrainer's dataset preparation because weighted methods need a per-token weight
column, and TRL's packing step keeps only `input_ids` and `labels`. Packing itself is TRL's best-fit-decreasing
`pack_dataset`, which packs every list column, weights included, and records each row's `seq_lengths`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from rdistill.errors import RdistillError
from rdistill.train.examples import Example

log = logging.getLogger(__name__)

IGNORE = -100
# For students without a chat template (base models): a plain Q/A layout, saved with the student so evaluation renders
# prompts the same way through apply_chat_template.
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'Question: ' + message['content'] + '\n' }}"
    "{% else %}{{ 'Answer: ' + message['content'] + eos_token + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Answer:' }}{% endif %}"
)


@dataclass
class TokenizedStage:
    rows: list[dict[str, list]]
    examples: int  # examples kept
    dropped_too_long: int
    tokens: int  # tokens in the kept examples
    completion_tokens: int


def ensure_chat_template(tokenizer) -> str:
    """Give a template-less tokenizer the plain Q/A template. Returns which template the run uses."""
    if tokenizer.chat_template:
        return "student"
    log.warning("the student has no chat template; using rdistill's plain 'Question: ... Answer: ...' layout")
    tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    return "rdistill-plain"


def tokenize_example(tokenizer, example: Example, *, weighted: bool = False) -> dict[str, list]:
    """One row: input_ids, labels (-100 over the prompt) and, if `weighted`, loss_weights.

    A weighted row spreads the example's weight evenly over its completion tokens (weight / n each), so every
    example counts by its weight however long its completion is: the per-example mean the methods' weights assume.
    """
    return _tokenize(tokenizer, example, weighted)[0]


def _tokenize(tokenizer, example: Example, weighted: bool) -> tuple[dict[str, list], bool]:
    conversation = example.conversational()
    prompt_ids = _input_ids(tokenizer.apply_chat_template(conversation["prompt"], tokenize=True,
                                                          add_generation_prompt=True, return_dict=True))
    full_ids = _input_ids(tokenizer.apply_chat_template(conversation["prompt"] + conversation["completion"],
                                                        tokenize=True, return_dict=True))
    start = _common_prefix_length(prompt_ids, full_ids)
    if start >= len(full_ids):
        raise RdistillError("the chat template dropped the assistant reply: nothing to train on")
    completion = len(full_ids) - start
    row: dict[str, list] = {"input_ids": full_ids, "labels": [IGNORE] * start + full_ids[start:]}
    if weighted:
        row["loss_weights"] = [0.0] * start + [example.weight / completion] * completion
    return row, start < len(prompt_ids)


def tokenize_stage(tokenizer, examples: list[Example], *, max_length: int, weighted: bool,
                   decorate=None) -> TokenizedStage:
    """Rows for `examples`; `decorate(tokenizer, example, row)` may rewrite each row and add columns first."""
    rows, dropped, diverged, tokens, completion_tokens = [], 0, 0, 0, 0
    for example in examples:
        row, prompt_diverged = _tokenize(tokenizer, example, weighted)
        if decorate is not None:
            row = decorate(tokenizer, example, row)
        diverged += prompt_diverged
        if len(row["input_ids"]) > max_length:
            dropped += 1  # cutting it would cut the answer off the end: the student would learn to stop mid-way
            continue
        rows.append(row)
        tokens += len(row["input_ids"])
        completion_tokens += sum(1 for label in row["labels"] if label != IGNORE)
    if diverged:
        log.warning("in %d examples the chat template renders the prompt differently once a reply follows; their "
                    "completions start where the two renderings diverge", diverged)
    if dropped:
        log.warning("dropped %d of %d examples longer than --max-length %d tokens", dropped, len(examples), max_length)
    if not rows:
        raise RdistillError(f"every example is longer than --max-length {max_length} tokens: raise --max-length")
    return TokenizedStage(rows, len(rows), dropped, tokens, completion_tokens)


def to_dataset(rows: list[dict[str, list]], *, packing: bool, max_length: int):
    """A datasets.Dataset of the rows; with `packing`, rows of up to `max_length` tokens holding whole examples."""
    from datasets import Dataset

    from rdistill.train.quiet import quiet_libraries

    dataset = Dataset.from_list(rows)
    if not packing:
        return dataset
    from trl.data_utils import pack_dataset

    with quiet_libraries():
        # One batch: best-fit-decreasing over the whole stage fills rows better than over chunks of 1000.
        return pack_dataset(dataset, max_length, strategy="bfd", map_kwargs={"batch_size": max(len(dataset), 1)})


def _input_ids(encoded: Any) -> list[int]:
    ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
    if ids and isinstance(ids[0], list):  # a batch of one
        ids = ids[0]
    return list(ids)


def _common_prefix_length(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
