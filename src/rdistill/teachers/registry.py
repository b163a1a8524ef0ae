"""Backends chosen by one string, each imported only when used.

    openai:MODEL            openai:MODEL@http://127.0.0.1:8080/v1
    anthropic:MODEL         anthropic:MODEL@BASE_URL
    llamacpp:/path/model.gguf
    hf:ORG/NAME or hf:DIR   offline:NAME   (real small models shipped as PyPI packages)
    llamaserver:offline:NAME   llamaserver:/path/model.gguf   llamaserver:/path/to/lora-student
                            (llama.cpp's llama-server: parallel slots, continuous batching)

A bare path to a folder (a trained student) means `hf:`; a bare path to a .gguf file means `llamacpp:`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from rdistill.errors import RdistillError, UnknownNameError
from rdistill.teachers.base import Backend

# prefix -> (module, factory function); modules are imported lazily so the base install stays light.
BACKENDS: dict[str, tuple[str, str]] = {
    "openai": ("rdistill.teachers.openai_backend", "OpenAIBackend"),
    "anthropic": ("rdistill.teachers.anthropic_backend", "AnthropicBackend"),
    "llamacpp": ("rdistill.teachers.llamacpp_backend", "LlamaCppBackend"),
    "hf": ("rdistill.teachers.hf_backend", "HFBackend"),
    "offline": ("rdistill.teachers.llamacpp_backend", "offline_backend"),
    "llamaserver": ("rdistill.teachers.llamaserver_backend", "LlamaServerBackend"),
}


def parse_spec(spec: str) -> tuple[str, str]:
    """Split 'prefix:rest'. Bare paths are recognised; anything else without a known prefix is an error."""
    spec = spec.strip()
    if not spec:
        raise RdistillError("empty model name: use e.g. openai:gpt-4o-mini or offline:smollm2-135m-instruct")
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in BACKENDS and rest:
        return prefix, rest
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        return "llamacpp", spec
    if path.is_dir():
        return "hf", spec
    if sep and len(prefix) > 1:  # a misspelt prefix, like "opneai:gpt-4o"
        raise UnknownNameError("backend", prefix, list(BACKENDS))
    raise RdistillError(f"cannot tell which backend serves {spec!r}: write it as one of "
                        + ", ".join(f"{p}:…" for p in BACKENDS) + " (or give a .gguf file or a model folder)")


def load_backend(spec: str, **options: Any) -> Backend:
    prefix, rest = parse_spec(spec)
    module_name, factory_name = BACKENDS[prefix]
    module = importlib.import_module(module_name)
    factory = getattr(module, factory_name)
    if prefix in ("openai", "anthropic") and "@" in rest:
        model, _, base_url = rest.partition("@")
        return factory(model, base_url=base_url, **options)
    return factory(rest, **options)
