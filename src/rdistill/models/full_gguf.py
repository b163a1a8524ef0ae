"""A transformers model's weights as a llama.cpp model GGUF, built on the GGUF its base came from.

A student trained from a catalog GGUF (a LoRA merged into its base, or a full fine-tune) has new weights but the
same architecture, tokenizer and hyperparameters as that GGUF. So the file is written the way llama.cpp's
`gguf_new_metadata.py` copies a model: every metadata key of the base GGUF (vocabulary, merges, special tokens,
RoPE and attention settings) is kept, and the tensors are replaced by the student's:

- HF names become GGUF names through gguf's own HF-to-GGUF tensor-name map (what convert_hf_to_gguf.py uses);
- llama-family q/k weights get llama.cpp's RoPE row permutation back (transformers undid it on load);
- 2-D weights are written as float16 (or float32), 1-D tensors (norms, biases) as float32, as the converter does;
- every tensor the base has must be produced, with the base's shape; tied embeddings stay tied (no output.weight
  when the base has none, refused when the student's lm_head has drifted from its embeddings).

Quantizing the result (q4_k_m, q8_0, ...) is llama.cpp's `llama-quantize`; see rdistill/export/gguf.py.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from rdistill.models.lora_gguf import (PERMUTED_QK, SUPPORTED_ARCHITECTURES, BaseGGUF, ExportError, gguf_file,
                                      import_gguf, permute_rows)

log = logging.getLogger(__name__)

# Keys the writer sets itself or that describe the old file rather than the model.
_REPLACED_KEYS = ("general.architecture", "general.file_type", "general.quantization_version", "general.name")
_TIED_OUTPUT = "output.weight"


def model_tensors_for_gguf(state_dict: dict[str, Any], base: BaseGGUF, *, float_type: str = "f16",
                           where: str = "the model") -> list[tuple[str, Any]]:
    """[(gguf tensor name, numpy array)] in the base's layout, every base tensor accounted for."""
    import numpy as np

    gguf = import_gguf()
    if base.architecture not in SUPPORTED_ARCHITECTURES:
        raise ExportError(f"the base model {base.path.name} is a {base.architecture or 'unknown'!s} model; GGUF "
                          f"export supports {', '.join(SUPPORTED_ARCHITECTURES)} models only")
    arch = next(a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == base.architecture)
    name_map = gguf.get_tensor_name_map(arch, base.block_count)
    wide = np.float16 if float_type == "f16" else np.float32
    out: dict[str, Any] = {}
    for hf_name, tensor in state_dict.items():
        gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            if hf_name.endswith("rotary_emb.inv_freq"):
                continue  # a buffer computed from the config, never stored by the converter either
            raise ExportError(f"{where}: no GGUF tensor corresponds to {hf_name} for a {base.architecture} model")
        array = tensor.detach().to("cpu").float().numpy()
        if gguf_name == _TIED_OUTPUT and _TIED_OUTPUT not in base.shapes:
            embeddings = state_dict.get("model.embed_tokens.weight")
            if embeddings is None or not np.array_equal(array, embeddings.detach().to("cpu").float().numpy()):
                raise ExportError(f"{where}: lm_head differs from the token embeddings, but the base model "
                                  f"{base.path.name} ties them (it has no {_TIED_OUTPUT})")
            continue
        if base.architecture in PERMUTED_QK and base.head_count:
            if gguf_name.startswith("blk.") and ".attn_q." in gguf_name:
                array = permute_rows(array, int(base.head_count))
            elif gguf_name.startswith("blk.") and ".attn_k." in gguf_name:
                array = permute_rows(array, int(base.head_count_kv or base.head_count))
        expected = base.shapes.get(gguf_name)
        if expected is None:
            raise ExportError(f"{where}: {hf_name} maps to {gguf_name}, which the base model {base.path.name} "
                              "does not have")
        if tuple(reversed(array.shape)) != expected:
            raise ExportError(f"{where}: {hf_name} is {tuple(array.shape)} but the base model's {gguf_name} is "
                              f"{tuple(reversed(expected))}: is this model a fine-tune of {base.path.name}?")
        out[gguf_name] = np.ascontiguousarray(array, dtype=wide if array.ndim >= 2 else np.float32)
    missing = sorted(set(base.shapes) - set(out))
    if missing:
        raise ExportError(f"{where} has no weights for the base model's {', '.join(missing[:5])}"
                          + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    return [(name, out[name]) for name in base.shapes]  # the base's tensor order


def write_model_gguf(state_dict: dict[str, Any], base_gguf: str | os.PathLike, output: str | os.PathLike, *,
                     name: str, chat_template: str | None = None, float_type: str = "f16") -> Path:
    """Write `state_dict` (a transformers model of the architecture `base_gguf` holds) as a model GGUF at `output`,
    atomically, with the base's metadata; `chat_template` replaces the base's template when given."""
    if float_type not in ("f16", "f32"):
        raise ExportError(f"unknown float type {float_type!r}: use f16 or f32")
    gguf = import_gguf()
    base_path, output = Path(base_gguf), Path(output)
    base = BaseGGUF(base_path)
    tensors = model_tensors_for_gguf(state_dict, base, float_type=float_type, where=name)
    reader = gguf.GGUFReader(str(base_path))

    with gguf_file(output, base.architecture) as writer:
        for field in reader.fields.values():
            if field.name.startswith("GGUF.") or field.name in _REPLACED_KEYS:
                continue
            if chat_template is not None and field.name == gguf.Keys.Tokenizer.CHAT_TEMPLATE:
                continue
            value_type = field.types[0]
            sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(field.name, field.contents(), value_type, sub_type=sub_type)
        writer.add_name(name)
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if float_type == "f16" else gguf.LlamaFileType.ALL_F32)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        if chat_template is not None:
            writer.add_chat_template(chat_template)
        for tensor_name, array in tensors:
            writer.add_tensor(tensor_name, array)
    log.info("wrote %d tensors (%s) with the metadata of %s to %s", len(tensors), float_type, base_path.name, output)
    return output
