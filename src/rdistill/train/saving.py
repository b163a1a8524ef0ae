"""Writing the trained student in Hugging Face format.

Full fine-tuning: the model and tokenizer in OUT. LoRA: the adapter (and tokenizer) in OUT/adapter and the tokenizer
in OUT; with `merged=True` also the adapter merged into its base in OUT, so `AutoModelForCausalLM.from_pretrained(OUT)`
loads a plain model without peft. rdistill.models.load_causal_lm(OUT) loads either kind, and `rdistill export --to hf`
writes the merged model later. The adapter records its base as a model string load_causal_lm understands.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rdistill.models import parse_model_spec

log = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"


def adapter_base_reference(student: str) -> str:
    """How adapter_config.json names the base: a hub id as PEFT writes it, a folder as an absolute path, and a
    catalog model as offline:NAME (its converted folder is a cache detail that may move)."""
    kind, target = parse_model_spec(student)
    if kind == "folder":
        adapter_config = Path(target) / "adapter_config.json"
        if adapter_config.is_file():  # training went on from an adapter: its base is still the base
            return json.loads(adapter_config.read_text(encoding="utf-8"))["base_model_name_or_path"]
        return str(Path(target).resolve())
    return f"offline:{target}" if kind == "offline" else target


def save_student(model, tokenizer, output_dir: Path, *, student: str, merged: bool = False) -> dict[str, str | None]:
    """Save `model` (a PeftModel or a plain one) and `tokenizer`; returns where each part went, relative to OUT."""
    from peft import PeftModel

    output_dir.mkdir(parents=True, exist_ok=True)
    adapter = None
    if isinstance(model, PeftModel):
        config = model.peft_config[model.active_adapter]
        config.base_model_name_or_path = adapter_base_reference(student)
        # No embedding layers to save (all-linear adapters leave them frozen), and saying so stops peft from looking
        # up the base's config by its model string to check.
        model.save_pretrained(output_dir / ADAPTER_DIR, save_embedding_layers=False)
        tokenizer.save_pretrained(output_dir / ADAPTER_DIR)
        adapter = ADAPTER_DIR
        if not merged:
            tokenizer.save_pretrained(output_dir)  # the chat template the student was trained with, at the top
            log.info("saved the student's LoRA adapter to %s/%s", output_dir, ADAPTER_DIR)
            return {"model": None, "adapter": adapter}
        model = model.merge_and_unload()  # the base's weights now include the adapter's update
    model.config.use_cache = True  # generation wants its cache back
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    log.info("saved the student to %s%s", output_dir, " (merged; adapter in adapter/)" if adapter else "")
    return {"model": ".", "adapter": adapter}
