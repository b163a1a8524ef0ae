"""Loss only on completions, and packing without cross-contamination, on the installed transformers/TRL (CPU)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from test_train_random_student import one_torch_thread, train_files  # noqa: E402,F401  (fixtures)

from rdistill.train.collator import DistillCollator, layout_for  # noqa: E402
from rdistill.train.examples import Example, load_trace_data  # noqa: E402
from rdistill.train.random_student import build_tokenizer  # noqa: E402
from rdistill.train.tokenize import IGNORE, ensure_chat_template, to_dataset, tokenize_example, tokenize_stage  # noqa: E402

QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tom has 3 apples. How many?"}]
ANSWER = "Step 1: 3 + 0 = 3\nThe answer is 3."


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer([ANSWER])


def test_labels_are_ignored_exactly_over_the_prompt(tokenizer):
    row = tokenize_example(tokenizer, Example(QUESTION, ANSWER))
    prompt_ids = tokenizer.apply_chat_template(QUESTION, tokenize=True, add_generation_prompt=True,
                                               return_dict=True)["input_ids"]
    n = len(prompt_ids)
    assert row["input_ids"][:n] == prompt_ids
    assert row["labels"][:n] == [IGNORE] * n
    assert row["labels"][n:] == row["input_ids"][n:] and IGNORE not in row["labels"][n:]
    assert tokenizer.decode(row["input_ids"][n:]) == ANSWER + "<|im_end|>\n"  # the end of turn is learnt too


def test_a_student_without_chat_template_gets_the_plain_layout(tokenizer):
    bare = build_tokenizer([ANSWER])
    bare.chat_template = None
    assert ensure_chat_template(bare) == "rdistill-plain" and ensure_chat_template(tokenizer) == "student"
    row = tokenize_example(bare, Example(QUESTION, ANSWER))
    n = row["labels"].index(next(label for label in row["labels"] if label != IGNORE))
    assert bare.decode(row["input_ids"][:n]) == "Be brief.\n\nQuestion: Tom has 3 apples. How many?\nAnswer:"
    assert bare.decode(row["input_ids"][n:]) == f" {ANSWER}<|im_end|>\n"


def test_weighted_rows_spread_the_example_weight_over_its_completion(tokenizer):
    row = tokenize_example(tokenizer, Example(QUESTION, ANSWER, weight=0.3), weighted=True)
    prompt_len = row["labels"].count(IGNORE)
    assert row["loss_weights"][:prompt_len] == [0.0] * prompt_len
    assert sum(row["loss_weights"]) == pytest.approx(0.3)


def test_examples_longer_than_max_length_are_dropped_not_cut(tokenizer):
    short, long = Example(QUESTION, "3."), Example(QUESTION, ANSWER * 20)
    stage = tokenize_stage(tokenizer, [short, long, short], max_length=64, weighted=False)
    assert stage.examples == 2 and stage.dropped_too_long == 1
    assert all(len(r["input_ids"]) <= 64 for r in stage.rows)


def test_collator_layouts():
    rows = [{"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7], "seq_lengths": [3]},
            {"input_ids": [8, 9, 10, 11, 12], "labels": [IGNORE, IGNORE, 10, 11, 12], "seq_lengths": [2, 3]}]
    packed = DistillCollator(0, "packed_rows")(rows)
    assert "attention_mask" not in packed
    assert packed["position_ids"].tolist() == [[0, 1, 2, 0, 0], [0, 1, 0, 1, 2]]
    assert packed["labels"].tolist() == [[IGNORE, 6, 7, IGNORE, IGNORE], [IGNORE, IGNORE, IGNORE, 11, 12]]
    assert packed["num_real_tokens"].item() == 8
    flat = DistillCollator(0, "flat")(rows)
    assert flat["input_ids"].shape == (1, 8) and flat["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2]]
    padded = DistillCollator(0, "padded")([{k: v for k, v in r.items() if k != "seq_lengths"} for r in rows])
    assert padded["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert layout_for(False, "flash_attention_2") == "padded"
    assert layout_for(True, "sdpa") == "packed_rows" and layout_for(True, "flash_attention_2") == "flat"


def _fused_model(folder, attn="sdpa"):
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation=attn).eval()
    add_fused_lm_head(model, outputs=("log_probs",))
    return model


def _per_sequence_logprob(model, batch, seq_lengths, *, fused=True, **forward):
    """Summed log-prob of each packed example's completion, keyed by its tokens; seq_lengths per batch row."""
    batch = dict(batch)
    batch.pop("num_real_tokens")
    with torch.no_grad():
        if fused:  # the trainer's path: TRL's chunked LM head
            log_probs = model(**batch, fused_lm_head=True, **forward).log_probs
        else:  # a plain forward, as any other code computing a loss from logits would
            labels = batch.pop("labels")[:, 1:]
            logits = model(**batch, **forward).logits[:, :-1].log_softmax(-1)
            log_probs = logits.gather(-1, labels.clamp(min=0)[..., None])[..., 0] * (labels != IGNORE)
    found = {}
    for row, lengths in enumerate(seq_lengths):
        start = 0
        for length in lengths:  # log_probs[:, t] scores the token at t + 1
            found[tuple(batch["input_ids"][row, start:start + length].tolist())] = \
                log_probs[row, start:start + length - 1].sum().item()
            start += length
    return found


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_batch_scores_each_example_as_if_alone(train_files, attn):
    traces, student = train_files
    from transformers import AutoTokenizer

    from rdistill.train.cot_sft import build_examples
    from rdistill.train.prompting import PromptFormat

    tok = AutoTokenizer.from_pretrained(student)
    rows = tokenize_stage(tok, build_examples(load_trace_data(traces), PromptFormat()), max_length=512,
                          weighted=False).rows
    packed = list(to_dataset(rows, packing=True, max_length=512))
    assert max(len(r["seq_lengths"]) for r in packed) >= 3  # several examples really share a row
    model = _fused_model(student, attn)
    batch = DistillCollator(tok.pad_token_id, "packed_rows")(packed)
    lengths = [r["seq_lengths"] for r in packed]
    together = _per_sequence_logprob(model, batch, lengths, use_cache=False)
    alone = {}
    for row in rows:
        single = DistillCollator(tok.pad_token_id, "padded")([row])
        single["position_ids"] = torch.arange(len(row["input_ids"]))[None]
        del single["attention_mask"]
        alone.update(_per_sequence_logprob(model, single, [[len(row["input_ids"])]], use_cache=False))
    assert set(together) == set(alone) and len(alone) == len(rows)
    assert max(abs(together[k] - alone[k]) for k in alone) < 1e-3
    flat = DistillCollator(tok.pad_token_id, "flat")(packed)
    flat_scores = _per_sequence_logprob(model, flat, [[n for row in lengths for n in row]], use_cache=False)
    assert max(abs(flat_scores[k] - alone[k]) for k in alone) < 1e-3
    plain = _per_sequence_logprob(model, batch, lengths, fused=False, use_cache=False)
    assert max(abs(plain[k] - alone[k]) for k in alone) < 1e-3
    # The trap: with a KV cache (the default of a plain forward), transformers skips packed-sequence detection and
    # packed examples attend to those before them in their row. This comparison sees it when it happens.
    leaky = _per_sequence_logprob(model, batch, lengths, fused=False)
    assert max(abs(leaky[k] - alone[k]) for k in alone) > 1e-2


def _trainer_for(student, tok, rows, layout, tmp_path):
    from rdistill.train.core import build_trainer
    from rdistill.train.settings import TrainSettings

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(student)
    settings = TrainSettings(student=str(student), output_dir=tmp_path, lora=False, batch_size=len(rows))
    return build_trainer(model, tok, to_dataset(rows, packing=False, max_length=512), settings,
                         output_dir=tmp_path / "ck", epochs=1, layout=layout)


def test_trainer_loss_is_the_same_packed_or_padded(train_files, tmp_path):
    traces, student = train_files
    from transformers import AutoTokenizer

    from rdistill.train.cot_sft import build_examples
    from rdistill.train.prompting import PromptFormat

    tok = AutoTokenizer.from_pretrained(student)
    rows = tokenize_stage(tok, build_examples(load_trace_data(traces), PromptFormat())[:6], max_length=512,
                          weighted=False).rows
    trainer = _trainer_for(student, tok, rows, "padded", tmp_path)
    padded = DistillCollator(tok.pad_token_id, "padded")(rows)
    packed = DistillCollator(tok.pad_token_id, "packed_rows")(list(to_dataset(rows, packing=True, max_length=512)))
    with torch.no_grad():
        loss_padded = trainer.compute_loss(trainer.model, padded).item()
        loss_packed = trainer.compute_loss(trainer.model, packed).item()
    assert loss_packed == pytest.approx(loss_padded, abs=1e-5)
    assert packed["input_ids"].shape[0] < padded["input_ids"].shape[0]  # it did pack


def test_weighted_loss_is_the_weighted_mean_of_per_example_mean_losses(train_files, tmp_path):
    traces, student = train_files
    from transformers import AutoTokenizer

    from rdistill.train.cot_sft import build_examples
    from rdistill.train.prompting import PromptFormat

    tok = AutoTokenizer.from_pretrained(student)
    examples = build_examples(load_trace_data(traces), PromptFormat())[:4]
    weights = [1.0, 3.0, 0.5, 2.0]
    weighted = [Example(e.prompt, e.completion, w) for e, w in zip(examples, weights)]
    rows = tokenize_stage(tok, weighted, max_length=512, weighted=True).rows
    trainer = _trainer_for(student, tok, rows, "padded", tmp_path)
    means = []
    with torch.no_grad():
        for row in rows:
            plain = {k: v for k, v in row.items() if k != "loss_weights"}
            means.append(trainer.compute_loss(trainer.model, DistillCollator(tok.pad_token_id)([plain])).item())
        got = trainer.compute_loss(trainer.model, DistillCollator(tok.pad_token_id)(rows)).item()
    expected = sum(w * m for w, m in zip(weights, means)) / sum(weights)
    assert got == pytest.approx(expected, rel=1e-5)
    unweighted = sum(means) / len(means)
    assert abs(got - unweighted) > 1e-4  # the weights changed the loss
