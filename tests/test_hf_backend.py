"""The `hf:` backend and `rdistill.models`, on tiny random Qwen2- and Llama-shaped models built here (2 layers,
hidden size 64) with a real byte-level BPE tokenizer and chat template, checked against plain forward passes.
The slow test converts the real SmolLM2 GGUF through transformers and asks it a question."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rdistill.errors import RdistillError  # noqa: E402
from rdistill.models import load_causal_lm, resolve_dtype  # noqa: E402
from rdistill.teachers.base import Request, SamplingParams  # noqa: E402
from rdistill.teachers.cache import ResponseCache  # noqa: E402
from rdistill.teachers.client import TeacherClient  # noqa: E402
from rdistill.teachers.hf_backend import HFBackend  # noqa: E402
from rdistill.teachers.registry import load_backend  # noqa: E402

log = logging.getLogger(__name__)

CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n'"
          " + m['content'] + '<|eot_id|>' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>",
            "<|end_header_id|>", "<|eot_id|>"]
CORPUS = ["What is two plus three? The answer is five.", "Count the letters in the word apple.",
          "Tom has 3 apples and buys 4 more; he now has 7 apples.", "Step by step: 12 + 30 = 42."]
PROMPTS = ["hi", "What is two plus three? Think step by step, then count the apples Tom has.",
           "Tom has 3 apples", "Count the letters in apple"]


def _tokenizer(template: str, eos: str, bos: str | None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS * 20, trainers.BpeTrainer(
        vocab_size=300, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=eos, bos_token=bos, pad_token="<|endoftext|>",
                                   chat_template=template)


def _save_tiny(folder, arch: str):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    if arch == "qwen2":
        tok = _tokenizer(CHATML, "<|im_end|>", None)
        config_cls, model_cls, tied = Qwen2Config, Qwen2ForCausalLM, True
    else:
        tok = _tokenizer(LLAMA3, "<|eot_id|>", "<|begin_of_text|>")
        config_cls, model_cls, tied = LlamaConfig, LlamaForCausalLM, False
    # initializer_range 0.2 (not 0.02): a random model that varies its output with context, so batching
    # mistakes show up as different text instead of hiding behind one repeated token.
    config = config_cls(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                        initializer_range=0.2, tie_word_embeddings=tied, eos_token_id=tok.eos_token_id,
                        bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model_cls(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {arch: str(_save_tiny(root / arch, arch)) for arch in ("qwen2", "llama")}


@pytest.fixture(scope="module")
def backends(tiny_dirs):
    return {arch: HFBackend(path, batch_size=4) for arch, path in tiny_dirs.items()}


def _run(coro):
    return asyncio.run(coro)


def _greedy(max_tokens=10, **kw):
    return SamplingParams(temperature=0.0, max_tokens=max_tokens, **kw)


def _reference_greedy(model, prompt_ids: list[int], steps: int):
    """Greedy decoding the slow, obvious way: a full forward pass per token, no cache, no padding."""
    seq, chosen, logprobs = list(prompt_ids), [], []
    with torch.no_grad():
        for _ in range(steps):
            lp = model(torch.tensor([seq])).logits[0, -1].float().log_softmax(-1)
            token = int(lp.argmax())
            seq.append(token)
            chosen.append(token)
            logprobs.append(float(lp[token]))
    return chosen, logprobs


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_greedy_matches_a_plain_forward_loop(arch, tiny_dirs, backends):
    backend = backends[arch]
    model, tokenizer = load_causal_lm(tiny_dirs[arch])
    request = Request.chat(PROMPTS[1], params=_greedy(12, top_logprobs=2))
    got = _run(backend.complete(request))
    tokens, logprobs = _reference_greedy(model, backend.prompt_ids(request.messages), 12)
    assert got.finish_reason == "length" and got.completion_tokens == 12
    assert got.text == tokenizer.decode(tokens, skip_special_tokens=True)
    assert [t.logprob for t in got.logprobs] == pytest.approx(logprobs, abs=1e-4)


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_batched_greedy_equals_one_by_one_with_left_padding(arch, backends):
    backend = backends[arch]
    requests = [Request.chat(p, params=_greedy(10, top_logprobs=1)) for p in PROMPTS]
    lengths = {len(backend.prompt_ids(r.messages)) for r in requests}
    assert len(lengths) == len(PROMPTS)  # every row is padded by a different amount
    batched = _run(backend.complete_batch(requests))
    alone = [_run(backend.complete(r)) for r in requests]
    assert len({c.text for c in alone}) > 1  # the model does react to its prompt
    for b, a in zip(batched, alone):
        assert (b.text, b.completion_tokens, b.finish_reason) == (a.text, a.completion_tokens, a.finish_reason)
        assert [t.logprob for t in b.logprobs] == pytest.approx([t.logprob for t in a.logprobs], abs=1e-4)


def test_usage_and_per_row_max_tokens(tiny_dirs, backends):
    backend = backends["qwen2"]
    _, tokenizer = load_causal_lm(tiny_dirs["qwen2"])
    requests = [Request.chat(PROMPTS[0], params=_greedy(3)), Request.chat(PROMPTS[1], params=_greedy(7))]
    short, long = _run(backend.complete_batch(requests))
    assert (short.completion_tokens, short.finish_reason) == (3, "length")
    assert (long.completion_tokens, long.finish_reason) == (7, "length")
    expected_prompt = tokenizer.apply_chat_template(requests[1].message_dicts(), tokenize=True,
                                                    add_generation_prompt=True, return_dict=True)["input_ids"]
    assert long.prompt_tokens == len(expected_prompt)
    assert long.text.startswith(_run(backend.complete(Request.chat(PROMPTS[1], params=_greedy(3)))).text)


def test_llama_template_bos_is_not_doubled(tiny_dirs, backends):
    ids = backends["llama"].prompt_ids([("user", "hi")])
    bos = load_causal_lm(tiny_dirs["llama"])[1].bos_token_id
    assert ids[0] == bos and ids.count(bos) == 1


def test_stop_string_truncates_and_reports_stop(backends):
    backend = backends["qwen2"]
    full = _run(backend.complete(Request.chat(PROMPTS[1], params=_greedy(20)))).text
    # A stop string from the middle of the greedy text, made of plain ASCII so it decodes the same mid-stream.
    start = next(i for i in range(4, len(full) - 2) if full[i:i + 2].isascii() and full[i:i + 2].isprintable())
    stop = full[start:start + 2]
    cut = _run(backend.complete(Request.chat(PROMPTS[1], params=_greedy(20, stop=(stop,)))))
    assert cut.finish_reason == "stop"
    assert cut.text == full[:full.index(stop)]
    assert cut.completion_tokens < 20


def test_eos_ends_a_row_early_and_is_not_in_the_text(tiny_dirs, tmp_path):
    model, tokenizer = load_causal_lm(tiny_dirs["qwen2"])
    prompt = HFBackend(tiny_dirs["qwen2"]).prompt_ids([("user", PROMPTS[2])])
    tokens, _ = _reference_greedy(model, prompt, 8)
    k = next(i for i in range(2, 8) if tokens[i] not in tokens[:i])
    folder = shutil.copytree(tiny_dirs["qwen2"], tmp_path / "eos")
    config = json.loads((folder / "generation_config.json").read_text())
    config["eos_token_id"] = [tokenizer.eos_token_id, tokens[k]]  # the model "ends its turn" at step k+1
    (folder / "generation_config.json").write_text(json.dumps(config))
    other = Request.chat(PROMPTS[0], params=_greedy(8))
    ended = Request.chat(PROMPTS[2], params=_greedy(8, top_logprobs=1))
    backend = HFBackend(str(folder))
    got, neighbour = _run(backend.complete_batch([ended, other]))
    assert (got.finish_reason, got.completion_tokens, len(got.logprobs)) == ("stop", k, k)
    assert got.text == tokenizer.decode(tokens[:k], skip_special_tokens=True)
    alone = _run(backend.complete(other))  # the other row is not cut off by this row's EOS
    assert (neighbour.text, neighbour.completion_tokens) == (alone.text, alone.completion_tokens)


def test_top_logprobs_are_a_proper_distribution(tiny_dirs, backends):
    vocab = len(load_causal_lm(tiny_dirs["llama"])[1])  # ask for every token: their probabilities must sum to 1
    got = _run(backends["llama"].complete(Request.chat(PROMPTS[3], params=_greedy(5, top_logprobs=vocab))))
    assert len(got.logprobs) == got.completion_tokens == 5
    for step in got.logprobs:
        values = [lp for _, lp in step.top]
        assert len(values) == vocab
        assert sum(torch.tensor(values).exp().tolist()) == pytest.approx(1.0, abs=1e-4)
        assert values == sorted(values, reverse=True)
        assert step.top[0] == (step.token, pytest.approx(step.logprob))  # greedy took the top-1 token


def test_sequence_logprob_matches_a_manual_forward_pass(tiny_dirs, backends):
    backend = backends["qwen2"]
    model, tokenizer = load_causal_lm(tiny_dirs["qwen2"])
    messages = [("system", "Be brief."), ("user", "What is two plus three?")]
    continuation = "The answer is five."
    prompt = backend.prompt_ids(messages)
    cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = model(torch.tensor([prompt + cont])).logits[0].float().log_softmax(-1)
    manual = sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(cont))
    assert backend.sequence_logprob(messages, continuation) == pytest.approx(manual, abs=1e-4)
    pairs = [(messages, continuation), ([("user", "hi")], " apples"), ([("user", PROMPTS[1])], ""),
             ([("user", "hi")], "The answer is five.")]
    batched = backend.sequence_logprobs(pairs)
    assert batched == pytest.approx([backend.sequence_logprob(m, c) for m, c in pairs], abs=1e-4)
    assert batched[2] == 0.0 and batched[0] < 0


def test_seeded_sampling_is_reproducible_and_independent_of_the_batch(backends):
    backend = backends["qwen2"]
    sampled = SamplingParams(temperature=1.0, top_p=0.95, seed=11, max_tokens=10)
    request = Request.chat("hi", params=sampled)
    alone = _run(backend.complete(request)).text
    neighbour = Request.chat(PROMPTS[1], params=SamplingParams(temperature=0.7, seed=3, max_tokens=4))
    in_batch = _run(backend.complete_batch([neighbour, request]))[1].text
    assert in_batch == alone == _run(backend.complete(request)).text
    next_sample = Request.chat("hi", params=sampled, sample_index=1)
    assert _run(backend.complete(next_sample)).text != alone
    greedy = _run(backend.complete(Request.chat("hi", params=_greedy(10)))).text
    nucleus_of_one = SamplingParams(temperature=1.0, top_p=1e-9, seed=5, max_tokens=10)
    assert _run(backend.complete(Request.chat("hi", params=nucleus_of_one))).text == greedy


def test_client_batches_uncached_requests_and_answers_reruns_from_cache(tiny_dirs, tmp_path):
    backend = HFBackend(tiny_dirs["qwen2"], batch_size=2)
    batch_sizes = []
    real_complete_batch = backend.complete_batch

    async def counting(requests):
        batch_sizes.append(len(requests))
        return await real_complete_batch(requests)

    backend.complete_batch = counting
    requests = [Request.chat(p, params=_greedy(4)) for p in PROMPTS] + [Request.chat("bye", params=_greedy(4))]
    cache = ResponseCache(tmp_path / "cache.sqlite")
    first = TeacherClient(backend, cache=cache)
    delivered = []
    results = first.generate(requests, on_result=lambda i, r: delivered.append(i))
    assert batch_sizes == [2, 2, 1] and sorted(delivered) == list(range(5))
    assert first.ledger.models[first.name].calls == 5
    assert first.ledger.models[first.name].completion_tokens == sum(r.completion_tokens for r in results)
    assert [r.text for r in results] == [_run(backend.complete(r)).text for r in requests[:5]]

    batch_sizes.clear()
    second = TeacherClient(backend, cache=cache)
    again = second.generate(requests + [Request.chat("new", params=_greedy(4))])
    assert batch_sizes == [1]  # only the new request reached the model
    assert all(r.cached for r in again[:5]) and [r.text for r in again[:5]] == [r.text for r in results]
    assert second.ledger.models[second.name].cache_hits == 5
    assert second.ledger.models[second.name].calls == 1


def test_registry_builds_the_backend_and_names_folders_by_content(tiny_dirs, tmp_path):
    backend = load_backend(f"hf:{tiny_dirs['qwen2']}")
    assert isinstance(backend, HFBackend) and backend.provider == "hf" and backend.local
    copy = shutil.copytree(tiny_dirs["qwen2"], tmp_path / "qwen2")
    assert HFBackend(str(copy)).model == HFBackend(str(copy)).model
    (copy / "config.json").write_text((copy / "config.json").read_text() + "\n")  # "retrained": new size
    assert HFBackend(str(copy)).model != backend.model


# -- rdistill.models ---------------------------------------------------------------------------------------


def test_load_causal_lm_reports_what_is_wrong(tmp_path):
    with pytest.raises(RdistillError, match="not a model folder"):
        load_causal_lm(str(tmp_path))
    with pytest.raises(RdistillError, match="not found"):
        load_causal_lm("./no/such/student")
    with pytest.raises(RdistillError, match="unknown offline model"):
        load_causal_lm("offline:smollm3")


def test_missing_transformers_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes `import transformers` fail
    with pytest.raises(RdistillError, match="pip install torch transformers"):
        load_causal_lm(str(tmp_path))


def test_dtype_choice():
    assert resolve_dtype(None, "cpu") == torch.float32
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    assert resolve_dtype(torch.float16, "cpu") == torch.float16
    with pytest.raises(RdistillError, match="unknown dtype"):
        resolve_dtype("int3", "cpu")


def test_lora_adapter_folder_loads_base_plus_adapter(tiny_dirs, tmp_path):
    peft = pytest.importorskip("peft")
    base, _ = load_causal_lm(tiny_dirs["llama"])
    # init_lora_weights=False: a random (non-zero) adapter, so loading it visibly changes the logits.
    tuned = peft.get_peft_model(base, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                      init_lora_weights=False))
    tuned.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([[5, 17, 42, 99]])
    with torch.no_grad():
        expected = tuned(ids).logits
        plain = load_causal_lm(tiny_dirs["llama"])[0](ids).logits
        merged, tokenizer = load_causal_lm(str(tmp_path / "adapter"))
        got = merged(ids).logits
    assert not torch.allclose(plain, expected, atol=1e-3)
    assert torch.allclose(got, expected, atol=1e-4)
    assert tokenizer.eos_token == "<|eot_id|>" and not merged.training
    trainable, _ = load_causal_lm(str(tmp_path / "adapter"), for_training=True)
    assert trainable.training and any(p.requires_grad for n, p in trainable.named_parameters() if "lora" in n)


@pytest.mark.slow
def test_offline_smollm2_through_transformers_answers_a_sum():
    from rdistill.models import offline_hf_folder
    from rdistill.models.catalog import is_installed

    name = "smollm2-135m-instruct"
    if not is_installed(name):
        pytest.skip(f"{name} is not installed")
    started = time.perf_counter()
    folder = offline_hf_folder(name)  # first time: dequantize the GGUF and save; later: a marker check
    log.info("offline_hf_folder(%s) took %.1fs", name, time.perf_counter() - started)
    backend = load_backend(f"hf:{folder}")
    started = time.perf_counter()
    prompt = backend.prompt_ids([("user", "What is 2+3?")])  # loads the model from the converted folder
    log.info("loading the converted folder took %.1fs", time.perf_counter() - started)
    from transformers import AutoTokenizer

    rendered = AutoTokenizer.from_pretrained(folder).decode(prompt)
    assert rendered.startswith("<|im_start|>system\n") and rendered.endswith("<|im_start|>assistant\n")
    answer = _run(backend.complete(Request.chat("What is 2+3?", params=_greedy(30))))
    assert "5" in answer.text and answer.finish_reason == "stop", answer
