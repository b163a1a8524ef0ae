"""An Ollama Modelfile for an exported student: the GGUF, the chat layout it was trained with, its system prompt.

Ollama renders prompts with Go templates, not the Jinja chat template inside the GGUF, so the layout is written
out. ChatML students (Qwen2.5, SmolLM2: `<|im_start|>role ... <|im_end|>`) get the ChatML template, with the
student's task prefix put before each user message as training did. The system prompt is the one the student was
trained with; a student trained without one saw its chat template's default (Qwen2.5 inserts "You are Qwen ..."),
and that default is what SYSTEM carries, so Ollama's prompt is the one training saw, token for token.
For another chat layout the Modelfile leaves TEMPLATE out (Ollama then reads the GGUF's template) and says so.
"""

from __future__ import annotations

import re

CHATML_STOP = "<|im_end|>"
_CHATML_SYSTEM = re.compile(r"<\|im_start\|>system\n(.*?)<\|im_end\|>", re.S)


def is_chatml(chat_template: str | None) -> bool:
    return bool(chat_template) and "<|im_start|>" in chat_template and CHATML_STOP in chat_template


def default_system_prompt(chat_template: str) -> str | None:
    """The system message a ChatML template inserts when the conversation has none (None if it inserts none)."""
    import jinja2

    rendered = jinja2.Environment().from_string(chat_template).render(
        messages=[{"role": "user", "content": "?"}], add_generation_prompt=True, bos_token="", eos_token="")
    found = _CHATML_SYSTEM.search(rendered)
    return found.group(1) if found else None


def _quoted(text: str) -> str:
    if '"""' in text:
        raise ValueError('the text holds """, which a Modelfile cannot quote')
    return f'"""{text}"""'


def chatml_template(user_prefix: str) -> str:
    prefix = user_prefix.replace("{{", "{{`{{`}}")  # literal braces in Go templates
    return ("{{- range .Messages }}<|im_start|>{{ .Role }}\n"
            + ("{{ if eq .Role \"user\" }}" + prefix + "{{ end }}" if prefix else "")
            + "{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n")


def render_modelfile(gguf_name: str, *, chat_template: str | None, system_prompt: str | None,
                     user_prefix: str = "", title: str = "") -> str:
    lines = [f"# {title}".rstrip() if title else "# exported by rdistill",
             "# ollama create NAME -f Modelfile && ollama run NAME", f"FROM ./{gguf_name}", ""]
    if is_chatml(chat_template):
        system = system_prompt if system_prompt is not None else default_system_prompt(chat_template)
        lines += [f"TEMPLATE {_quoted(chatml_template(user_prefix))}"]
        if system is not None:
            lines += [f"SYSTEM {_quoted(system)}"]
        lines += [f'PARAMETER stop "{CHATML_STOP}"']
    else:
        lines += ["# The student's chat layout is not ChatML: Ollama uses the template inside the GGUF."]
        if system_prompt is not None:
            lines += [f"SYSTEM {_quoted(system_prompt)}"]
        if user_prefix:
            lines += [f"# The student was trained with this prefix before each question: {user_prefix!r}"]
    lines += ["# rdistill evaluated the student with greedy decoding", "PARAMETER temperature 0", ""]
    return "\n".join(lines)
