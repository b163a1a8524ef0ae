"""The chat messages a model is evaluated with, in one of two styles (or a custom system prompt).

- "teacher": the generation stage's own prompt for the problem's domain (rdistill/generate/templates.yaml),
  rendered the way `rdistill generate` renders it, so a distilled student meets the prompt its traces came from.
- "plain": no system prompt; the question, its options when the question does not list them, and a line saying
  how to state the answer (evaluate/prompts.yaml).
- "trained": a student made by `rdistill train` is asked exactly the way it was taught (its folder's
  `rdistill_train.json`: system prompt and task prefix over the bare question, plus the options of a choice question).
- a custom system prompt (`--system-prompt`): that system prompt over the plain user message.

Choice questions always get their options and "answer with a letter"; boolean questions get "answer yes or no".
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from importlib import resources
from typing import Any

from rdistill.errors import InputError
from rdistill.records import Problem

PROMPT_STYLES = ("plain", "teacher", "trained")
CUSTOM_STYLE = "custom"
_CHOICE_LETTERS = "ABCDEFGHIJ"
# Types whose format the generation templates do not spell out ("The answer is <answer>" is not enough to get
# a letter or a yes/no from a small model), so the teacher style gets the answer-format line for them too.
_TYPES_NEEDING_FORMAT_IN_TEACHER_STYLE = ("choice", "boolean", "math")

Messages = tuple[tuple[str, str], ...]


@functools.lru_cache(maxsize=1)
def eval_prompts() -> dict[str, Any]:
    """evaluate/prompts.yaml as a dict (read once)."""
    import yaml

    text = resources.files("rdistill.evaluate").joinpath("prompts.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def answer_format(answer_type: str | None) -> str:
    table = eval_prompts()["answer_format"]
    return table.get(answer_type or "text", table["text"])


def lists_its_choices(question: str, choices: list[str]) -> bool:
    """True when the question text already shows every option (benchmarks such as ARC write them in)."""
    return all(re.search(rf"\(?{_CHOICE_LETTERS[i]}[).:]\s*{re.escape(c.strip()[:40])}", question)
               for i, c in enumerate(choices[:len(_CHOICE_LETTERS)]))


def plain_choices_block(problem: Problem) -> str:
    if not problem.choices or lists_its_choices(problem.question, problem.choices):
        return ""
    lines = [f"({_CHOICE_LETTERS[i]}) {c}" for i, c in enumerate(problem.choices[:len(_CHOICE_LETTERS)])]
    return "\n\nChoices:\n" + "\n".join(lines)


def plain_user_message(problem: Problem) -> str:
    template = eval_prompts()["plain"]["user"]
    return (template.replace("{question}", problem.question.strip())
            .replace("{choices}", plain_choices_block(problem))
            .replace("{answer_format}", answer_format(problem.answer_type)))


def teacher_messages(problem: Problem, templates=None) -> Messages:
    """The generation stage's prompt for this problem, plus the answer-format line for choice/boolean/math."""
    from rdistill.generate.templates import format_choices, load_templates

    template = (templates or load_templates()).for_domain(problem.domain)
    # Rendered as `rdistill generate` (cot) renders it, so a student sees the prompt of its training traces.
    system, user = template.render(question=problem.question, choices=format_choices(problem.choices))
    if problem.answer_type in _TYPES_NEEDING_FORMAT_IN_TEACHER_STYLE:
        user = f"{user}\n\n{answer_format(problem.answer_type)}"
    return (("system", system), ("user", user)) if system.strip() else (("user", user),)


def trained_messages(problem: Problem, prompt_format) -> Messages:
    """The student's training prompt (a `rdistill.train.PromptFormat`) for this problem."""
    question = problem.question.strip() + plain_choices_block(problem)
    return tuple((m["role"], m["content"]) for m in prompt_format.messages(question))


def build_messages(problem: Problem, style: str, system_prompt: str | None = None, templates=None,
                   prompt_format=None) -> Messages:
    """The messages for one problem: `style` is plain, teacher or trained; a `system_prompt` makes it custom."""
    if system_prompt is not None:
        if not system_prompt.strip():
            raise InputError("the system prompt is empty", field="system_prompt")
        return (("system", system_prompt), ("user", plain_user_message(problem)))
    if style == "plain":
        return (("user", plain_user_message(problem)),)
    if style == "teacher":
        return teacher_messages(problem, templates)
    if style == "trained":
        if prompt_format is None:
            raise InputError("the trained prompt style needs the student's prompt format", field="prompt_style")
        return trained_messages(problem, prompt_format)
    raise InputError(f"unknown prompt style {style!r}: use one of {', '.join(PROMPT_STYLES)}", field="prompt_style")


def prompt_fingerprint(style: str, system_prompt: str | None, templates_source: str | None = None,
                       prompt_format=None) -> str:
    """A short id of the prompt setup, kept with every result so that comparisons can tell prompts apart."""
    payload = {"style": style, "system_prompt": system_prompt, "plain": eval_prompts()["plain"],
               "answer_format": eval_prompts()["answer_format"]}
    if style == "trained" and prompt_format is not None:
        payload["trained"] = prompt_format.to_json()
    if style == "teacher" and system_prompt is None:
        from rdistill.generate.templates import load_templates

        templates = load_templates(templates_source)
        payload["domains"] = {name: [t.system, t.user] for name, t in sorted(templates.domains.items())}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]
