"""Loading: a model string (models/spec.py) turned into a loaded transformers model and its tokenizer.

    hf:ORG/NAME           a Hugging Face hub id (needs a network or a filled HF cache)
    hf:DIR  or  DIR       a saved model folder (config.json), or a PEFT LoRA adapter folder (adapter_config.json)
    offline:NAME          a catalog GGUF (catalog.py), dequantized through transformers once and cached as a
                          plain HF folder in <cache>/hf/NAME/, so later loads take a fraction of a second

Used by the `hf:` teacher backend, and by training and evaluation. torch/transformers are imported inside the
functions so `import rdistill.models` stays cheap.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rdistill.errors import RdistillError
from rdistill.models.spec import parse_model_spec

log = logging.getLogger(__name__)

HF_INSTALL = "pip install torch transformers"
PEFT_INSTALL = "pip install peft"
GGUF_INSTALL = "pip install gguf"
# Written last into a converted folder: its presence (with the right hash) is what makes the folder usable.
CONVERTED_MARKER = "rdistill-source.json"

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "half": "float16"}


def load_causal_lm(spec: str, *, dtype: Any = None, device: str | None = None,
                   for_training: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) for `spec`, on `device` (default: cuda if present, else cpu) in `dtype` (default:
    bf16 on a bf16-capable GPU, else float32). `for_training` leaves the model in train mode and keeps a LoRA
    adapter trainable; otherwise the model is in eval mode and an adapter is merged into its base."""
    _require_hf()  # fail early, naming the install command
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    kind, target = parse_model_spec(spec)
    started = time.perf_counter()
    if kind == "offline":
        model, tokenizer = _load_folder(offline_hf_folder(target), dtype, for_training)
    elif kind == "folder":
        model, tokenizer = _load_folder(Path(target), dtype, for_training)
    else:
        model, tokenizer = _load_hub(target, dtype)
    model.to(device)
    model.train(for_training)
    if tokenizer.pad_token_id is None:
        # Batching needs a pad id; it is never attended to, so any token works and EOS is the usual choice.
        tokenizer.pad_token = tokenizer.eos_token
    log.info("loaded %s (%s, %s on %s) in %.1fs", spec, type(model).__name__, dtype, device,
             time.perf_counter() - started)
    return model, tokenizer


def load_tokenizer(spec: str):
    """The tokenizer alone (no weights) of what `spec` names: a catalog model, a hub id, a model, adapter or
    student folder."""
    _require_hf()
    from transformers import AutoTokenizer

    kind, target = parse_model_spec(spec)
    if kind == "offline":
        return AutoTokenizer.from_pretrained(offline_hf_folder(target))
    if kind == "hub":
        return AutoTokenizer.from_pretrained(target)
    folder = Path(target)
    for candidate in (folder, folder / "adapter"):
        if (candidate / "tokenizer_config.json").is_file():
            return AutoTokenizer.from_pretrained(candidate)
    config = folder / "adapter_config.json"
    if config.is_file():  # an adapter saved without its tokenizer: the base's
        return load_tokenizer(_adapter_base_spec(json.loads(config.read_text())["base_model_name_or_path"]))
    raise RdistillError(f"{folder} holds no tokenizer (tokenizer_config.json)")


def resolve_device(device: str | None) -> str:
    import torch

    if device:
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def resolve_dtype(dtype: Any, device: str):
    """A torch dtype from None, a torch dtype, or a name like "bf16"/"float32"."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        # bf16 halves memory and is what GPUs train in; CPUs compute bf16 slowly, so stay in float32 there.
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    name = _DTYPES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise RdistillError(f"unknown dtype {dtype!r}: use one of {', '.join(sorted(_DTYPES))}")
    return getattr(torch, name)


def offline_hf_folder(name: str, cache_root: Path | None = None) -> Path:
    """The HF folder holding catalog model `name` dequantized, converting its GGUF on first use.

    The folder sits beside the GGUF cache (<cache>/hf/NAME/); weights are stored in float32 so the dequantized
    values are kept exactly, whatever dtype a later load asks for."""
    from rdistill.models.catalog import default_cache_dir, get_model, model_path

    entry = get_model(name)
    folder = Path(cache_root or default_cache_dir().parent / "hf") / name
    if _marker_matches(folder, entry.sha256):
        return folder
    gguf_path = model_path(name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{name}.", suffix=".partial"))
    try:
        started = time.perf_counter()
        model, tokenizer = _load_gguf(gguf_path)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / CONVERTED_MARKER).write_text(json.dumps({"name": name, "sha256": entry.sha256,
                                                            "gguf": str(gguf_path)}))
        if folder.exists() and not _marker_matches(folder, entry.sha256):
            shutil.rmtree(folder)  # a stale or half-written folder from an older catalog entry
        try:
            os.replace(staging, folder)
        except OSError:
            if not _marker_matches(folder, entry.sha256):  # not another process winning the race
                raise
        log.info("converted %s to a HF folder %s in %.1fs", name, folder, time.perf_counter() - started)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


# -- internals -------------------------------------------------------------------------------------------


def _require_hf():
    try:
        import torch
        import transformers
    except ImportError as e:
        raise RdistillError(f"loading Hugging Face models needs torch and transformers ({e.name} is missing): "
                            f"{HF_INSTALL}") from None
    return torch, transformers


def _marker_matches(folder: Path, sha256: str) -> bool:
    try:
        return json.loads((folder / CONVERTED_MARKER).read_text()).get("sha256") == sha256
    except (OSError, ValueError):
        return False


def _load_gguf(gguf_path: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    try:
        import gguf  # noqa: F401 - transformers' GGUF reader needs it, and says so less clearly
    except ImportError:
        raise RdistillError(f"converting a GGUF model for transformers needs the gguf package: {GGUF_INSTALL}") from None
    log.info("dequantizing %s through transformers (once; the result is cached)", gguf_path)
    where, file = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=file)
        # dequantize=True: plain dense weights we can train and save, not packed GGUF blocks.
        model = AutoModelForCausalLM.from_pretrained(where, gguf_file=file, dtype=torch.float32,
                                                     quantization_config=GgufConfig(dequantize=True))
    except (ValueError, KeyError, NotImplementedError) as e:
        raise RdistillError(f"transformers cannot load {gguf_path.name} ({e}); serve it with llama.cpp instead "
                            "(offline:NAME or llamacpp:PATH)") from e
    return model, tokenizer


def _load_hub(repo: str, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(repo)
        model = AutoModelForCausalLM.from_pretrained(repo, dtype=dtype)
    except OSError as e:
        raise RdistillError(f"could not load {repo!r} from the Hugging Face hub ({e}). Without a network, use a "
                            "local folder (hf:DIR) or a catalog model (offline:NAME)") from e
    return model, tokenizer


def _load_folder(folder: Path, dtype, for_training: bool):
    if (folder / "adapter_config.json").is_file():
        return _load_adapter(folder, dtype, for_training)
    if not (folder / "config.json").is_file() and (folder / "adapter" / "adapter_config.json").is_file():
        return _load_adapter(folder / "adapter", dtype, for_training)  # a LoRA student saved without a merged copy
    if not (folder / "config.json").is_file():
        raise RdistillError(f"{folder} is not a model folder: it has neither config.json (a model saved with "
                            "save_pretrained) nor adapter_config.json (a LoRA adapter)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    return model, tokenizer


def _load_adapter(folder: Path, dtype, for_training: bool):
    try:
        from peft import PeftModel
    except ImportError:
        raise RdistillError(f"{folder} is a LoRA adapter; loading it needs peft: {PEFT_INSTALL}") from None
    base_spec = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base_spec:
        raise RdistillError(f"{folder}/adapter_config.json does not name its base model (base_model_name_or_path)")
    kind, target = parse_model_spec(_adapter_base_spec(base_spec))
    if kind == "offline":
        target, kind = str(offline_hf_folder(target)), "folder"
    base, tokenizer = _load_folder(Path(target), dtype, False) if kind == "folder" else _load_hub(target, dtype)
    if (folder / "tokenizer_config.json").is_file():  # training may have added tokens or a chat template
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
    model = PeftModel.from_pretrained(base, str(folder), is_trainable=for_training)
    if not for_training:
        model = model.merge_and_unload()  # inference: one plain model, no adapter overhead per layer
    return model, tokenizer


def _adapter_base_spec(base: str) -> str:
    """PEFT records the base as a bare hub id or as the folder it was loaded from; make that a spec."""
    if base.startswith(("hf:", "offline:", "/", ".", "~")) or Path(base).expanduser().is_dir():
        return base  # a folder that has since moved is reported by parse_model_spec
    return f"hf:{base}"
