"""Evaluation prompts and problem loading: the teacher style is the generation stage's own prompt, the plain
style states the answer format, choices are listed once, booleans ask for yes/no."""

from __future__ import annotations

import pytest

from rdistill.errors import InputError
from rdistill.evaluate.options import EvalOptions
from rdistill.evaluate.problems import load_problems, problem_steps
from rdistill.evaluate.prompts import build_messages, prompt_fingerprint
from rdistill.generate.templates import format_choices, load_templates
from rdistill.records import Problem

ARC_LIKE = Problem(id="arc-1", question="Which gas do plants take in?\nAnswer Choices: (A) oxygen (B) carbon dioxide "
                   "(C) helium (D) neon", answer="B", choices=["oxygen", "carbon dioxide", "helium", "neon"],
                   domain="science")
BARE_CHOICE = Problem(id="c-1", question="Which colour is the sky on a clear day?", answer="A",
                      choices=["blue", "green"])
BOOLEAN = Problem(id="b-1", question="Is a whale a mammal?", answer="yes")
NUMERIC = Problem(id="n-1", question="What is 2 + 3?", answer="5", domain="math")


def test_teacher_style_is_the_generation_prompt_for_the_domain():
    (role_s, system), (role_u, user) = build_messages(NUMERIC, "teacher")
    template = load_templates().for_domain("math")
    assert (role_s, role_u) == ("system", "user")
    assert system == template.system
    assert user == template.render(question=NUMERIC.question, choices=format_choices(None))[1]


def test_plain_style_has_no_system_prompt_and_states_the_answer_format():
    messages = build_messages(NUMERIC, "plain")
    assert [role for role, _ in messages] == ["user"]
    assert messages[0][1].startswith("What is 2 + 3?")
    assert "The answer is <number>" in messages[0][1]


def test_plain_style_lists_choices_once_with_a_letter_instruction():
    listed = build_messages(ARC_LIKE, "plain")[0][1]
    assert listed.count("carbon dioxide") == 1  # already in the question: not repeated
    bare = build_messages(BARE_CHOICE, "plain")[0][1]
    assert "(A) blue" in bare and "(B) green" in bare
    assert "The answer is <letter>" in bare


@pytest.mark.parametrize("style", ["plain", "teacher"])
def test_booleans_and_choices_get_their_answer_format_in_both_styles(style):
    assert "yes or no" in build_messages(BOOLEAN, style)[-1][1]
    assert "letter" in build_messages(BARE_CHOICE, style)[-1][1]


def test_custom_system_prompt_goes_over_the_plain_question():
    messages = build_messages(NUMERIC, "teacher", system_prompt="Think hard.")
    assert messages[0] == ("system", "Think hard.")
    assert messages[1][1] == build_messages(NUMERIC, "plain")[0][1]
    assert EvalOptions(system_prompt="Think hard.").style == "custom"


def test_prompt_fingerprints_tell_prompts_apart():
    assert prompt_fingerprint("plain", None) != prompt_fingerprint("teacher", None)
    assert prompt_fingerprint("custom", "A") != prompt_fingerprint("custom", "B")
    assert prompt_fingerprint("plain", None) == prompt_fingerprint("plain", None)


def test_bad_options_fail_before_any_call():
    with pytest.raises(InputError, match="prompt style"):
        EvalOptions(prompt_style="fancy")
    with pytest.raises(InputError, match="role"):
        EvalOptions(role="judge")
    with pytest.raises(InputError, match="truncation"):
        EvalOptions(truncation_points=(0.5, 1.0))


def test_several_samples_sample_and_one_sample_is_greedy():
    assert EvalOptions().effective_temperature == 0.0
    assert EvalOptions(samples=4).effective_temperature > 0
    assert EvalOptions(samples=4, temperature=0.2).decoding()["temperature"] == 0.2


def test_synth_tasks_load_as_test_split_with_known_steps():
    problems = load_problems("synth:arithmetic", limit=6, steps="2-3", seed=1)
    assert len(problems) == 6 and {p.split for p in problems} == {"test"}
    assert {problem_steps(p) for p in problems} == {2, 3}
    with pytest.raises(InputError, match="steps"):
        load_problems("synth:arithmetic", limit=2, steps="0-99")


def test_benchmark_difficulty_comes_from_the_gold_solution(shared_data):
    gsm8k = load_problems("gsm8k", path=shared_data / "gsm8k" / "test.jsonl", limit=1)[0]
    assert problem_steps(gsm8k) == 2  # two annotated lines in the first GSM8K test solution
    strategy = load_problems("strategyqa", path=shared_data / "strategyqa", limit=1)[0]
    assert problem_steps(strategy) == len(strategy.metadata["decomposition"])


def test_a_problems_file_is_a_bench(tmp_path):
    from rdistill.jsonl import write_records

    path = tmp_path / "mine.jsonl"
    write_records(path, [NUMERIC, BOOLEAN])
    assert [p.id for p in load_problems(str(path), limit=1)] == ["n-1"]


def test_trained_style_asks_the_way_the_student_was_taught(tmp_path):
    import json

    from rdistill.evaluate.runner import trained_prompt_format
    from rdistill.train.prompting import RUN_CONFIG_FILE

    student = tmp_path / "student"
    student.mkdir()
    (student / RUN_CONFIG_FILE).write_text(json.dumps({"prompt": {"system_prompt": "Be terse.",
                                                                  "user_prefix": "[label] "}}))
    fmt = trained_prompt_format(str(student))
    assert trained_prompt_format(f"hf:{student}") == fmt
    problem = Problem(id="p", question="What is 2 + 3?", answer="5", answer_type="numeric")
    assert build_messages(problem, "trained", prompt_format=fmt) == (
        ("system", "Be terse."), ("user", "[label] What is 2 + 3?"))
    choice = Problem(id="c", question="Pick one.", answer="B", answer_type="choice", choices=["x", "y"])
    user = build_messages(choice, "trained", prompt_format=fmt)[-1][1]
    assert user.startswith("[label] Pick one.") and "(B) y" in user


def test_trained_style_refuses_a_model_that_is_not_a_student_folder(tmp_path):
    from rdistill.evaluate.runner import trained_prompt_format

    with pytest.raises(InputError, match="rdistill train"):
        trained_prompt_format("offline:smollm2-135m-instruct")
    with pytest.raises(InputError, match="rdistill train"):
        trained_prompt_format(str(tmp_path))


def test_a_multi_task_student_can_be_asked_through_another_of_its_tasks(tmp_path):
    import json

    from rdistill.evaluate.options import EvalOptions
    from rdistill.evaluate.prompts import prompt_fingerprint
    from rdistill.evaluate.runner import trained_prompt_format
    from rdistill.train.prompting import RUN_CONFIG_FILE

    student = tmp_path / "student"
    student.mkdir()
    (student / RUN_CONFIG_FILE).write_text(json.dumps({"prompt": {
        "system_prompt": None, "user_prefix": "[label] ",
        "tasks": {"label": "[label] ", "rationale": "[rationale] "}}}))
    problem = Problem(id="p", question="What is 2 + 3?", answer="5", answer_type="numeric")
    answers = trained_prompt_format(str(student))
    reasons = trained_prompt_format(str(student), "rationale")
    assert build_messages(problem, "trained", prompt_format=answers) == (("user", "[label] What is 2 + 3?"),)
    assert build_messages(problem, "trained", prompt_format=reasons) == (("user", "[rationale] What is 2 + 3?"),)
    assert trained_prompt_format(str(student), "label") == answers
    # the two ways of asking are told apart in every result
    assert (prompt_fingerprint("trained", None, prompt_format=answers)
            != prompt_fingerprint("trained", None, prompt_format=reasons))
    with pytest.raises(InputError, match=r"no task 'next_step' \(its tasks: label, rationale\)"):
        trained_prompt_format(str(student), "next_step")
    with pytest.raises(InputError, match="trained prompt style"):
        EvalOptions(prompt_style="teacher", student_task="rationale")


def test_a_single_task_student_has_no_other_task_and_keeps_its_prompt_id(tmp_path):
    import json

    from rdistill.evaluate.runner import trained_prompt_format
    from rdistill.train.prompting import RUN_CONFIG_FILE, PromptFormat

    student = tmp_path / "student"
    student.mkdir()
    (student / RUN_CONFIG_FILE).write_text(json.dumps({"prompt": {"system_prompt": None, "user_prefix": ""}}))
    with pytest.raises(InputError, match="trained on a single task"):
        trained_prompt_format(str(student), "rationale")
    # the record (and so the prompt id) of a single-task student is what it was before tasks were recorded
    assert PromptFormat().to_json() == {"system_prompt": None, "user_prefix": ""}
