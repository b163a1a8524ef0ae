"""The trained student's README.md: where it came from, how it was trained, how well training went.

Everything comes from the run record (rdistill_train.json), which stays the machine-readable source. Evaluation
results go between the EVAL markers: the eval stage replaces that block (see `replace_eval_section`) and leaves the
rest of the card alone.
"""

from __future__ import annotations

import json
from typing import Any

EVAL_START = "<!-- rdistill:eval:start -->"
EVAL_END = "<!-- rdistill:eval:end -->"
_NOT_EVALUATED = "Not evaluated yet: `rdistill eval` writes its results here."


def render_model_card(run: dict[str, Any]) -> str:
    data, hp, metrics, prompt = run["data"], run["hyperparameters"], run["metrics"], run["prompt"]
    teachers = ", ".join(f"{name} ({count} traces)" for name, count in data["teachers"].items()) or "unknown"
    base = run["student"]
    lines = [
        "---",
        f"base_model: {json.dumps(base)}",
        "library_name: transformers",
        f"tags: [rdistill, distillation, {run['method']}]",
        "---",
        "",
        f"# {run['output_name']}",
        "",
        f"A student distilled with rdistill from {teachers}: {run['method_summary']}.",
        "",
        "## Training data",
        "",
        f"- Teacher(s): {teachers}",
        f"- Trace file: `{data['path']}`",
        f"- SHA-256: `{data['sha256']}`",
        f"- Traces: {data['traces']}; training examples: {data['examples']}"
        f" ({data['dropped_too_long']} dropped as longer than {hp['max_length']} tokens)",
        "",
        "## Method",
        "",
        f"- Method: `{run['method']}`; options: {_inline(run['method_options'])}",
        f"- Fine-tuning: {_fine_tuning(hp, run.get('outputs') or {})}",
        f"- Student: `{base}`; chat template: {run['chat_template']}",
        "- Stages: " + "; ".join(f"{s['name']} ({s['examples']} examples, {s['steps']} steps)"
                                  for s in run["stages"]),
        "",
        "## Hyperparameters",
        "",
        "| name | value |",
        "|---|---|",
        *[f"| {k} | {_cell(v)} |" for k, v in hp.items()],
        "",
        "## Training metrics",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {_cell(v)} |" for k, v in metrics.items()],
        "",
        "Per-step loss, learning rate and tokens/s are in `metrics.jsonl`.",
        "",
        "## Evaluation",
        "",
        EVAL_START,
        _NOT_EVALUATED,
        EVAL_END,
        "",
        "## Prompting",
        "",
        "Ask the way the student was trained: render these messages with its chat template "
        "(`rdistill.train.load_prompt_format(folder).messages(question)` does it).",
        "",
        f"- System prompt: {_cell(prompt['system_prompt']) if prompt['system_prompt'] is not None else 'none (the chat template default)'}",
        f"- User message: `{prompt['user_prefix']}<question>`",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "model = AutoModelForCausalLM.from_pretrained(FOLDER)",
        "tokenizer = AutoTokenizer.from_pretrained(FOLDER)",
        "```",
        "",
    ]
    return "\n".join(lines)


def replace_eval_section(card: str, body: str) -> str:
    """The card with its evaluation block replaced by `body` (markdown)."""
    start, end = card.find(EVAL_START), card.find(EVAL_END)
    if start == -1 or end < start:
        return card.rstrip("\n") + f"\n\n## Evaluation\n\n{EVAL_START}\n{body}\n{EVAL_END}\n"
    return card[:start + len(EVAL_START)] + "\n" + body.strip("\n") + "\n" + card[end:]


def _inline(options: dict[str, Any]) -> str:
    return ", ".join(f"`{k}={v}`" for k, v in options.items()) or "none"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _fine_tuning(hp: dict[str, Any], outputs: dict[str, Any]) -> str:
    if not hp["lora"]:
        return "full"
    if outputs.get("model"):
        return "LoRA (adapter in `adapter/`, merged weights here)"
    return "LoRA (adapter in `adapter/`; `rdistill export FOLDER --to hf|gguf|ollama` writes a merged model)"
