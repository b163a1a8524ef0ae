"""Prompt templates are data: `templates.yaml` ships with the package, and `--templates FILE` is merged over it.

A user file only needs the keys it changes (`domains.math.user`, a new `domains.finance`, an extra orca
style...). The merged result is validated before any call: unknown keys, missing prompts, a user template
without `{question}`, a rationalization template without `{answer}` or a misspelt placeholder each fail with
the file and the key that is wrong.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rdistill.errors import InputError

PLACEHOLDERS = ("question", "choices", "answer", "reasoning")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")
_CHOICE_LETTERS = "ABCDEFGHIJ"
_SHIPPED = "templates.yaml"


@dataclass(frozen=True)
class PromptTemplate:
    system: str
    user: str

    def render(self, **values: str) -> tuple[str, str]:
        return render(self.system, **values), render(self.user, **values)


@dataclass(frozen=True)
class Templates:
    domains: dict[str, PromptTemplate]
    rationalize: dict[str, PromptTemplate]
    orca_styles: dict[str, str]  # style name -> system prompt
    orca_user: str
    contrastive_rewrite: PromptTemplate
    source: str  # where they came from, for error messages

    def for_domain(self, domain: str | None) -> PromptTemplate:
        return self.domains.get(domain or "general") or self.domains["general"]

    def rationalize_for(self, domain: str | None) -> PromptTemplate:
        return self.rationalize.get(domain or "general") or self.rationalize["general"]


def render(template: str, **values: str) -> str:
    """Fill the known placeholders; any other text in braces (LaTeX, code) stays as written."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), template)


def format_choices(choices: list[str] | None) -> str:
    if not choices:
        return ""
    lines = [f"{_CHOICE_LETTERS[i]}. {c}" for i, c in enumerate(choices[:len(_CHOICE_LETTERS)])]
    return "\n\nChoices:\n" + "\n".join(lines)


def load_templates(path: str | Path | None = None) -> Templates:
    """The shipped templates, with the YAML file at `path` (if any) merged over them, validated."""
    shipped = _read_yaml(resources.files("rdistill.generate").joinpath(_SHIPPED).read_text("utf-8"), _SHIPPED)
    if path is None:
        return _validate(shipped, _SHIPPED)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read templates file: {e.strerror}", path=path) from None
    override = _read_yaml(text, str(path))
    if not isinstance(override, dict):
        raise InputError("expected a YAML mapping at the top (see the shipped templates.yaml)", path=path)
    return _validate(_merge(shipped, override), str(path))


def _read_yaml(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        raise InputError(f"invalid YAML: {problem}", path=where,
                         line=mark.line + 1 if mark is not None else None) from None


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    return override


# ------------------------------------------------------------------------------------------ validation

_TOP_KEYS = {"version", "domains", "rationalize", "orca", "contrastive"}


def _validate(data: Any, where: str) -> Templates:
    if not isinstance(data, dict):
        raise InputError("expected a YAML mapping at the top", path=where)
    _no_unknown_keys(data, _TOP_KEYS, "", where)
    if data.get("version", 1) != 1:
        raise InputError(f"unsupported templates version {data.get('version')!r} (this rdistill reads 1)",
                         path=where, field="version")
    domains = _template_table(data, "domains", where, required=("question",))
    rationalize = _template_table(data, "rationalize", where, required=("question", "answer"))
    orca = _mapping(data.get("orca"), "orca", where)
    _no_unknown_keys(orca, {"styles", "user"}, "orca", where)
    styles = _mapping(orca.get("styles"), "orca.styles", where)
    if not styles:
        raise InputError("needs at least one style", path=where, field="orca.styles")
    orca_styles = {str(name): _text(system, f"orca.styles.{name}", where) for name, system in styles.items()}
    orca_user = _text(orca.get("user"), "orca.user", where, required=("question",))
    contrastive = _mapping(data.get("contrastive"), "contrastive", where)
    _no_unknown_keys(contrastive, {"rewrite"}, "contrastive", where)
    rewrite = _template(contrastive.get("rewrite"), "contrastive.rewrite", where, required=("question", "reasoning"))
    return Templates(domains, rationalize, orca_styles, orca_user, rewrite, where)


def _template_table(data: dict, key: str, where: str, required: tuple[str, ...]) -> dict[str, PromptTemplate]:
    table = _mapping(data.get(key), key, where)
    if "general" not in table:
        raise InputError("needs a 'general' entry: it is used for any domain without its own", path=where,
                         field=key)
    return {str(name): _template(entry, f"{key}.{name}", where, required) for name, entry in table.items()}


def _template(entry: Any, field: str, where: str, required: tuple[str, ...]) -> PromptTemplate:
    entry = _mapping(entry, field, where)
    _no_unknown_keys(entry, {"system", "user"}, field, where)
    system = _text(entry.get("system"), f"{field}.system", where)
    return PromptTemplate(system, _text(entry.get("user"), f"{field}.user", where, required))


def _mapping(value: Any, field: str, where: str) -> dict:
    if not isinstance(value, dict):
        got = "nothing" if value is None else type(value).__name__
        raise InputError(f"expected a mapping, got {got}", path=where, field=field)
    return value


def _text(value: Any, field: str, where: str, required: tuple[str, ...] = ()) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError("expected a non-empty string", path=where, field=field)
    for name in _PLACEHOLDER.findall(value):
        if name not in PLACEHOLDERS:
            close = difflib.get_close_matches(name, PLACEHOLDERS, n=1, cutoff=0.75)
            if close:  # a typo would otherwise reach the teacher as literal "{questoin}"
                raise InputError(f"unknown placeholder {{{name}}}: did you mean {{{close[0]}}}?", path=where,
                                 field=field)
    for name in required:
        if "{" + name + "}" not in value:
            raise InputError(f"must contain the placeholder {{{name}}}", path=where, field=field)
    return value


def _no_unknown_keys(mapping: dict, known: set[str], field: str, where: str) -> None:
    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(known))})"
            raise InputError(f"unknown key {key!r}{hint}", path=where, field=f"{field}.{key}" if field else str(key))
