"""A randomly initialised student with a real architecture, for smoke runs, tests and throughput benchmarks.

Training speed depends on the shapes (layers, hidden size, vocabulary, sequence lengths), not on the weights, so a
random model with SmolLM2-135M's shapes measures what the real one would; and a 2-layer, 32-wide one trains in
milliseconds, which is what the unit tests need. The tokenizer is a byte-level BPE learnt on the spot from a small
corpus, with a ChatML chat template like SmolLM2's and Qwen2.5's, so prompts go through the same chat-template path
as a real student. Everything is saved with save_pretrained, so the folder loads like any other student.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)

# The published SmolLM2-135M(-Instruct) shapes: the fast real student, and the bench's reference model.
SMOLLM2_135M = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                    num_key_value_heads=3, head_dim=64, vocab_size=49152, max_position_embeddings=8192,
                    rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True)
# Two layers, 32 wide: unit tests train it for dozens of steps in a second or two on one CPU core.
TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            head_dim=8, max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
            tie_word_embeddings=True)

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# ChatML, as SmolLM2-Instruct and Qwen2.5-Instruct render it (without their default system prompts).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_BASE_CORPUS = (
    "Question: Tom has 3 apples and buys 5 more. How many apples does he have? "
    "Step 1: 3 + 5 = 8. The answer is 8. #### 8",
    "Let's think step by step. 12 * 4 = 48, 48 / 2 = 24, 24 - 7 = 17. So the answer is 17.",
    "yes no true false A B C D E (A) (B) (C) (D) reverse the last letters of each word: flip coin heads tails",
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 + - * / = % $ . , ; : ? ! ( ) [ ] [label] [rationale] [next-step]",
)


def build_tokenizer(corpus: Iterable[str] = (), *, vocab_size: int = 512):
    """A byte-level BPE tokenizer (any text encodes) with a ChatML template; `<|im_end|>` ends a turn."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator([*_BASE_CORPUS, *corpus], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build_random_student(folder: str | Path, *, shapes: dict | None = None, corpus: Iterable[str] = (),
                         tokenizer_vocab: int = 512, vocab_size: int | None = None, seed: int = 0) -> Path:
    """Save a random-init Llama-architecture model and its tokenizer to `folder`; return the folder.

    `shapes` defaults to TINY; pass SMOLLM2_135M for the real student's shapes. `vocab_size` defaults to the
    tokenizer's size; a larger one (SmolLM2's 49152) keeps the LM head as costly as the real model's.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig

    folder = Path(folder)
    tokenizer = build_tokenizer(corpus, vocab_size=tokenizer_vocab)
    params = dict(TINY if shapes is None else shapes)
    params["vocab_size"] = max(vocab_size or 0, len(tokenizer), 0 if shapes is None else params.get("vocab_size", 0))
    config = LlamaConfig(**params, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    log.info("saved a random %d-layer student (%.1fM parameters) to %s", config.num_hidden_layers,
             model.num_parameters() / 1e6, folder)
    return folder
