"""Prompt templates: the shipped file, user overrides merged over it, and located errors for bad ones."""

from __future__ import annotations

import pytest

from rdistill.errors import InputError
from rdistill.generate import GenerationOptions
from rdistill.generate.strategies import make_strategy
from rdistill.generate.templates import format_choices, load_templates, render
from rdistill.records import Problem


def test_the_shipped_math_template_asks_for_terse_checkable_steps():
    t = load_templates()
    math = t.domains["math"].user
    assert "a op b = c" in math and "The answer is" in math and "{question}" in math
    assert set(t.domains) >= {"general", "math", "code", "legal", "medical"}
    assert "```python" in t.domains["code"].user
    assert list(t.orca_styles) == ["step_by_step", "explain_like_a_teacher", "critical_thinking", "expert_analysis"]
    assert "{answer}" in t.rationalize["general"].user and "{reasoning}" in t.contrastive_rewrite.user


def test_rendering_fills_known_placeholders_and_keeps_other_braces():
    text = render("Q: {question}{choices} \\frac{a}{b} {unknown_thing}", question="2+2?",
                  choices=format_choices(["3", "4"]))
    assert text == "Q: 2+2?\n\nChoices:\nA. 3\nB. 4 \\frac{a}{b} {unknown_thing}"
    assert format_choices(None) == ""


def test_a_user_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("domains:\n  math:\n    user: 'Just solve: {question}'\n"
                    "  finance:\n    system: You are an accountant.\n    user: '{question}'\n"
                    "orca:\n  styles:\n    socratic: Ask yourself questions first.\n", encoding="utf-8")
    t = load_templates(path)
    assert t.domains["math"].user == "Just solve: {question}"
    assert t.domains["math"].system == load_templates().domains["math"].system  # untouched
    assert "socratic" in t.orca_styles and "step_by_step" in t.orca_styles
    strategy = make_strategy("domain:finance", GenerationOptions(templates=path), t)
    prompt = strategy.prompt(Problem(id="a", question="Net of 5 and 3?", answer="2"), 0)
    assert (prompt.system, prompt.user, prompt.metadata["domain"]) == ("You are an accountant.", "Net of 5 and 3?",
                                                                       "finance")


def test_cot_uses_the_problems_domain_and_falls_back_to_general():
    t = load_templates()
    cot = make_strategy("cot", GenerationOptions(), t)
    math = cot.prompt(Problem(id="a", question="1+1?", answer="2", domain="math"), 0)
    other = cot.prompt(Problem(id="b", question="Is it?", answer="yes", domain="commonsense"), 0)
    assert math.system == t.domains["math"].system and math.metadata == {"domain": "math"}
    assert other.system == t.domains["general"].system and other.metadata == {"domain": "general"}


@pytest.mark.parametrize("yaml_text, field, message", [
    ("domains:\n  math:\n    user: 'no placeholder here'\n", "domains.math.user", "{question}"),
    ("rationalize:\n  general:\n    user: '{question} only'\n", "rationalize.general.user", "{answer}"),
    ("domains:\n  math:\n    user: 'Solve {questoin}'\n", "domains.math.user", "did you mean {question}"),
    ("domain:\n  math: {}\n", "domain", "did you mean 'domains'"),
    ("domains:\n  math:\n    sytem: x\n", "domains.math.sytem", "did you mean 'system'"),
    ("domains:\n  math:\n    system: ''\n", "domains.math.system", "non-empty"),
    ("orca:\n  styles: 3\n", "orca.styles", "expected a mapping"),
    ("contrastive:\n  rewrite:\n    user: '{question}'\n", "contrastive.rewrite.user", "{reasoning}"),
    ("version: 2\n", "version", "unsupported"),
])
def test_bad_templates_fail_with_file_and_key(tmp_path, yaml_text, field, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_templates(path)
    assert info.value.field == field and message in str(info.value) and str(path) in str(info.value)


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("domains:\n  math:\n    user: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match="invalid YAML") as info:
        load_templates(path)
    assert info.value.line is not None and info.value.line >= 3


def test_a_missing_or_non_mapping_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_templates(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(InputError, match="mapping"):
        load_templates(tmp_path / "list.yaml")
