"""The random-init students the training tests and the packing bench use, and helpers the other test_train files
import: real trace files (built-in arithmetic problems with their gold solutions) and a tiny student folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")

from rdistill.data.synth import generate  # noqa: E402
from rdistill.jsonl import write_records  # noqa: E402
from rdistill.train.random_student import CHATML_TEMPLATE, build_random_student, build_tokenizer  # noqa: E402

# Tiny models gain nothing from several CPU threads, and on a busy machine OpenMP threads spinning against each other
# make them many times slower. Subprocesses get the environment below; in-process tests the fixture.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread for the module that imports this fixture, restored after it (other tests keep theirs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_traces(path: Path, n: int = 12, *, seed: int = 0, steps: tuple[int, int] = (1, 4)) -> Path:
    """Real traces: built-in arithmetic problems, their gold step-by-step solutions as the reasoning."""
    problems = generate("arithmetic", n, seed=seed, split="train", steps=steps)
    write_records(path, [{"question": p.question, "answer": p.answer, "reasoning": p.solution,
                          "teacher": "gold-solution", "difficulty": p.difficulty} for p in problems])
    return path


def make_tiny_student(folder: Path, traces: Path | None = None) -> Path:
    corpus = []
    if traces is not None:
        corpus = [f"{r['question']} {r['reasoning']}" for r in map(json.loads, traces.read_text().splitlines())]
    return build_random_student(folder, corpus=corpus)


@pytest.fixture(scope="session")
def train_files(tmp_path_factory) -> tuple[Path, Path]:
    """(trace file, tiny student folder), shared by a test session."""
    root = tmp_path_factory.mktemp("train-files")
    traces = write_traces(root / "traces.jsonl")
    return traces, make_tiny_student(root / "student", traces)


def test_tiny_student_loads_through_models_and_generates(train_files):
    from rdistill.models import load_causal_lm

    _, folder = train_files
    model, tokenizer = load_causal_lm(str(folder))
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 32
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 3 + 5?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    generated = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]


def test_tokenizer_round_trips_any_text_and_renders_chatml():
    tokenizer = build_tokenizer(["The answer is 42."])
    text = "Ünïcode, emoji 🙂 and 12,345.67 survive"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    assert tokenizer.chat_template == CHATML_TEMPLATE
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                             add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_smollm2_shapes_match_the_published_parameter_count(tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    from rdistill.train.random_student import SMOLLM2_135M, TINY

    folder = build_random_student(tmp_path / "s", shapes={**TINY, "vocab_size": 49152})
    assert AutoConfig.from_pretrained(folder).vocab_size == 49152  # the LM head keeps the real model's width
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model("llama", **SMOLLM2_135M))
    assert 134e6 < model.num_parameters() < 135e6  # SmolLM2-135M: 134.5M parameters
