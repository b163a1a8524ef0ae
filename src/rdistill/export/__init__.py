"""Export: a trained student as files other tools run (transformers/vLLM folders, llama.cpp GGUF, Ollama).

`export_student(folder, to, output, quant=...)`; `rdistill export` is the CLI over it."""

from rdistill.export.exporter import FORMATS, export_student
from rdistill.export.quantize import QUANT_TYPES
from rdistill.export.student import ExportInputError, StudentFolder

__all__ = ["FORMATS", "QUANT_TYPES", "ExportInputError", "StudentFolder", "export_student"]
