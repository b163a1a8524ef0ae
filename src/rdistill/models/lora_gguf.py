"""A PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) as a llama.cpp LoRA adapter GGUF.

llama.cpp applies an adapter GGUF on top of the base GGUF at load time (`llama-server --lora FILE`), so a student
trained by `rdistill train` from a catalog GGUF runs in llama.cpp without merging or re-quantizing anything. The
file follows llama.cpp's convert_lora_to_gguf.py:

- metadata `general.architecture` = the base's, `general.type = adapter`, `adapter.type = lora`,
  `adapter.lora.alpha` = PEFT's lora_alpha (llama.cpp scales each delta by alpha / rank, as PEFT does without
  rslora);
- for every adapted linear layer W (HF shape out x in), `<gguf name>.lora_a` = A (r x in) and
  `<gguf name>.lora_b` = B (out x r), float32, so that W' = W + alpha/r * B @ A. Names come from gguf's own
  HF-to-GGUF tensor-name map;
- llama-family GGUFs store attn_q / attn_k with their output rows permuted for llama.cpp's RoPE layout
  (transformers undoes this when it loads the GGUF), so B of q_proj / k_proj gets the same row permutation.

Only LoRA on the linear layers of llama- and qwen2-family models is supported; anything else (DoRA, rslora,
per-layer rank or alpha patterns, adapted embeddings or lm_head, modules_to_save, other architectures) fails
with a clear error. The base GGUF is read to check every tensor's shape before anything is written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from rdistill.errors import RdistillError

log = logging.getLogger(__name__)

GGUF_INSTALL = "pip install gguf"
SUPPORTED_ARCHITECTURES = ("llama", "qwen2")
# llama.cpp's convert_hf_to_gguf.py permutes q/k rows for these architectures (LlamaModel.permute).
PERMUTED_QK = ("llama",)
_PEFT_PREFIX = "base_model.model."
EXPORT_FORMAT_VERSION = 1  # bump when the written file changes, so cached exports are rebuilt


class ExportError(RdistillError):
    """The adapter cannot be written as a llama.cpp LoRA GGUF."""


def import_gguf():
    try:
        import gguf
    except ImportError:
        raise ExportError(f"exporting a LoRA adapter to GGUF needs the gguf package: {GGUF_INSTALL}") from None
    return gguf


def read_adapter_config(adapter_dir: Path) -> dict[str, Any]:
    path = adapter_dir / "adapter_config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{adapter_dir} is not a LoRA adapter folder (no adapter_config.json)") from None
    except ValueError as e:
        raise ExportError(f"{path} is not valid JSON ({e})") from None


def check_adapter_config(config: dict[str, Any], where: Path) -> tuple[int, float]:
    """(rank, alpha) of a plain LoRA adapter; an ExportError naming the setting for anything llama.cpp cannot run."""
    def fail(why: str) -> ExportError:
        return ExportError(f"{where}/adapter_config.json: {why}; llama.cpp LoRA export supports plain LoRA on "
                           "linear layers only")

    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise fail(f"peft_type is {config.get('peft_type')!r}, not LORA")
    if config.get("use_dora"):
        raise fail("use_dora is set (DoRA)")
    if config.get("use_rslora"):
        raise fail("use_rslora is set (llama.cpp scales by alpha / rank, not alpha / sqrt(rank))")
    for key in ("rank_pattern", "alpha_pattern"):
        if config.get(key):
            raise fail(f"{key} gives layers their own rank or alpha (llama.cpp has one alpha per adapter)")
    if config.get("modules_to_save"):
        raise fail(f"modules_to_save {config['modules_to_save']} are fully trained modules, not LoRA deltas")
    for key in ("layers_to_transform", "layers_pattern"):
        if config.get(key) not in (None, [], ""):
            log.debug("%s=%r: only the adapted layers are written", key, config.get(key))
    try:
        rank, alpha = int(config["r"]), float(config["lora_alpha"])
    except (KeyError, TypeError, ValueError):
        raise fail("r and lora_alpha must be numbers") from None
    if rank < 1:
        raise fail(f"r is {rank}")
    return rank, alpha


def load_adapter_tensors(adapter_dir: Path) -> dict[str, Any]:
    """name -> float32 numpy array, from adapter_model.safetensors (bf16/fp16 adapters included)."""
    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        other = "adapter_model.bin" if (adapter_dir / "adapter_model.bin").is_file() else None
        raise ExportError(f"{adapter_dir} has no adapter_model.safetensors"
                          + (f" (only {other}: re-save it with safe_serialization=True)" if other else ""))
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise ExportError("reading the adapter needs torch and safetensors: pip install torch safetensors") from None
    return {name: tensor.float().numpy() for name, tensor in load_file(str(path), device="cpu").items()}


# GGUF value types (gguf.GGUFValueType) -> struct format of one item; 8 is a string, 9 an array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def read_gguf_header(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """(metadata, tensor shapes) of a GGUF file, reading only its header. Arrays (the vocabulary: 50k-150k
    strings) are skipped, not decoded, so this takes milliseconds where gguf.GGUFReader takes seconds.
    Shapes are in ggml's ne order: (in_features, out_features) for a linear weight."""
    import struct

    def read(fmt: str):
        size = struct.calcsize(fmt)
        data = fh.read(size)
        if len(data) != size:
            raise ExportError(f"{path} ends inside its GGUF header (truncated file?)")
        return struct.unpack(fmt, data)[0]

    def read_string() -> str:
        return fh.read(read("<Q")).decode("utf-8", errors="replace")

    def skip_value(vtype: int) -> None:
        if vtype == _STRING:
            fh.seek(read("<Q"), 1)
        elif vtype == _ARRAY:
            item_type, count = read("<I"), read("<Q")
            if item_type in _SCALARS:
                fh.seek(struct.calcsize(_SCALARS[item_type]) * count, 1)
            else:
                for _ in range(count):
                    skip_value(item_type)
        elif vtype in _SCALARS:
            fh.seek(struct.calcsize(_SCALARS[vtype]), 1)
        else:
            raise ExportError(f"{path}: unknown GGUF value type {vtype}")

    metadata: dict[str, Any] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with open(path, "rb", buffering=1 << 20) as fh:
            if fh.read(4) != b"GGUF":
                raise ExportError(f"{path} is not a GGUF file")
            version = read("<I")
            if version < 2:
                raise ExportError(f"{path} is GGUF version {version}; versions 2 and later are supported")
            n_tensors, n_kv = read("<Q"), read("<Q")
            for _ in range(n_kv):
                key, vtype = read_string(), read("<I")
                if vtype == _STRING:
                    metadata[key] = read_string()
                elif vtype in _SCALARS:
                    metadata[key] = read(_SCALARS[vtype])
                else:
                    skip_value(vtype)
            for _ in range(n_tensors):
                name = read_string()
                n_dims = read("<I")
                shapes[name] = tuple(read("<Q") for _ in range(n_dims))
                fh.seek(4 + 8, 1)  # ggml type, data offset
    except OSError as e:
        raise ExportError(f"cannot read {path} ({e})") from None
    return metadata, shapes


class BaseGGUF:
    """What the export needs from the base model file: architecture, head counts, tensor shapes."""

    def __init__(self, path: Path):
        metadata, self.shapes = read_gguf_header(path)
        self.path = path
        self.architecture = str(metadata.get("general.architecture", ""))
        self.block_count = int(metadata.get(f"{self.architecture}.block_count", 0))
        self.head_count = metadata.get(f"{self.architecture}.attention.head_count")
        self.head_count_kv = metadata.get(f"{self.architecture}.attention.head_count_kv", self.head_count)
        self.chat_template = metadata.get("tokenizer.chat_template")


def gguf_base_chat_template(path: Path) -> str | None:
    """The chat template embedded in a GGUF model (None when it has none)."""
    template = BaseGGUF(path).chat_template
    return str(template) if template else None


def permute_rows(rows, n_head: int):
    """llama.cpp's LlamaModel.permute on the output rows (of a weight, or of a LoRA B)."""
    out = rows.shape[0]
    if out % (2 * n_head):
        raise ExportError(f"cannot permute {out} rows over {n_head} heads")
    return rows.reshape(n_head, 2, out // n_head // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def lora_tensors_for_gguf(tensors: dict[str, Any], base: BaseGGUF, rank: int,
                          where: Path) -> list[tuple[str, Any, Any]]:
    """[(gguf base tensor name, A, B)] in GGUF layout, each checked against the base's shape."""
    gguf = import_gguf()
    try:
        arch = next(a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == base.architecture)
    except StopIteration:
        arch = None
    if base.architecture not in SUPPORTED_ARCHITECTURES or arch is None:
        raise ExportError(f"the base model {base.path.name} is a {base.architecture or 'unknown'!s} model; LoRA "
                          f"export to GGUF supports {', '.join(SUPPORTED_ARCHITECTURES)} only")
    name_map = gguf.get_tensor_name_map(arch, base.block_count)
    pairs: dict[str, dict[str, Any]] = {}
    for name, array in tensors.items():
        module = name.removeprefix(_PEFT_PREFIX)
        for part in ("lora_A", "lora_B"):
            marker = f".{part}."
            if marker in module:
                head, _, tail = module.partition(marker)
                if tail not in ("weight", "default.weight"):
                    raise ExportError(f"{where}: unexpected adapter tensor {name!r}")
                pairs.setdefault(head + ".weight", {})[part] = array
                break
        else:
            kind = "an adapted embedding (lora_embedding_*)" if "lora_embedding" in name else "not a LoRA A/B tensor"
            raise ExportError(f"{where}: adapter tensor {name!r} is {kind}; llama.cpp LoRA export supports LoRA "
                              "on linear layers only")
    if not pairs:
        raise ExportError(f"{where}: the adapter holds no LoRA tensors")
    out = []
    for hf_name, ab in sorted(pairs.items()):
        if set(ab) != {"lora_A", "lora_B"}:
            raise ExportError(f"{where}: {hf_name} has only {', '.join(ab)}")
        a, b = ab["lora_A"], ab["lora_B"]
        if hf_name.startswith(("lm_head", "model.embed_tokens")):
            raise ExportError(f"{where}: the adapter changes {hf_name.removesuffix('.weight')}; llama.cpp LoRA "
                              "export supports the linear layers of the transformer blocks only")
        gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight",))
        if gguf_name is None:
            raise ExportError(f"{where}: no GGUF tensor corresponds to {hf_name} for a {base.architecture} model")
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != rank or b.shape[1] != rank:
            raise ExportError(f"{where}: {hf_name}: A {tuple(a.shape)} and B {tuple(b.shape)} are not a rank-{rank} "
                              "LoRA pair (A: r x in, B: out x r)")
        expected = base.shapes.get(gguf_name)
        if expected is None:
            raise ExportError(f"{where}: {hf_name} maps to {gguf_name}, which the base model "
                              f"{base.path.name} does not have")
        if expected != (a.shape[1], b.shape[0]):
            raise ExportError(f"{where}: {hf_name} adapts a {b.shape[0]} x {a.shape[1]} layer but the base model's "
                              f"{gguf_name} is {expected[1]} x {expected[0]}: is this adapter for "
                              f"{base.path.name}?")
        if base.architecture in PERMUTED_QK and base.head_count:
            if gguf_name.endswith(".attn_q.weight"):
                b = permute_rows(b, int(base.head_count))
            elif gguf_name.endswith(".attn_k.weight"):
                b = permute_rows(b, int(base.head_count_kv or base.head_count))
        out.append((gguf_name, a, b))
    return out


def export_lora_to_gguf(adapter_dir: str | os.PathLike, base_gguf: str | os.PathLike,
                        output: str | os.PathLike) -> Path:
    """Write the PEFT adapter in `adapter_dir` (trained on the model that `base_gguf` holds) as a llama.cpp LoRA
    GGUF at `output`, atomically. Returns `output`."""
    import numpy as np

    gguf = import_gguf()
    adapter_dir, base_path, output = Path(adapter_dir), Path(base_gguf), Path(output)
    config = read_adapter_config(adapter_dir)
    rank, alpha = check_adapter_config(config, adapter_dir)
    base = BaseGGUF(base_path)
    tensors = lora_tensors_for_gguf(load_adapter_tensors(adapter_dir), base, rank, adapter_dir)

    with gguf_file(output, base.architecture) as writer:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_name(f"{adapter_dir.resolve().parent.name}/{adapter_dir.name} (LoRA r={rank}, alpha={alpha:g})")
        for name, a, b in tensors:
            # numpy (rows, cols) becomes ggml ne (cols, rows): A (r, in) -> ne (in, r), B (out, r) -> ne (r, out),
            # which is what llama.cpp checks against the base weight's ne (in, out).
            writer.add_tensor(f"{name}.lora_a", np.ascontiguousarray(a, dtype=np.float32))
            writer.add_tensor(f"{name}.lora_b", np.ascontiguousarray(b, dtype=np.float32))
    log.info("exported %d LoRA pairs (r=%d, alpha=%g) from %s to %s", len(tensors), rank, alpha, adapter_dir, output)
    return output


@contextlib.contextmanager
def gguf_file(output: Path, architecture: str):
    """A GGUFWriter whose keys and tensors are added in the `with` block, then written to a hidden temporary file
    beside `output` and renamed onto it: a failure leaves no half-written file."""
    gguf = import_gguf()
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".partial")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = gguf.GGUFWriter(str(tmp), architecture)
        yield writer
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(tmp, 0o666 & ~file_mode_umask())  # mkstemp makes it private; give it a normal file's mode
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)


def file_mode_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
