"""From traces to token rows: prompts, completions, each method's examples, curriculum order, loss masks, registry."""

from __future__ import annotations

import json

import pytest

from rdistill.errors import InputError, RdistillError, UnknownNameError
from rdistill.records import Trace
from rdistill.train import answer_only, cot_sft, curriculum, step_by_step
from rdistill.train.examples import Example, TraceData, load_trace_data
from rdistill.train.prompting import PromptFormat, load_prompt_format, reasoning_with_answer
from rdistill.train.registry import get_method, method_names, parse_key_values, parse_options
from rdistill.train.settings import TrainSettings

STEPS_3 = "Step 1: 2 + 3 = 5\nStep 2: 5 * 4 = 20\nStep 3: 20 - 1 = 19"


def trace(question="Q?", answer="19", reasoning=STEPS_3 + "\nThe answer is 19.", **extra) -> Trace:
    return Trace(question=question, answer=answer, reasoning=reasoning, **extra)


def data_of(*traces: Trace) -> TraceData:
    return TraceData(path="mem.jsonl", sha256="0" * 64, traces=list(traces))


def settings(**overrides) -> TrainSettings:
    return TrainSettings(student="unused", output_dir="unused", **overrides)


# -- prompts and targets ---------------------------------------------------------------------------------


def test_reasoning_that_states_its_answer_is_kept_as_written():
    assert reasoning_with_answer(trace()) == STEPS_3 + "\nThe answer is 19."


def test_reasoning_without_a_readable_answer_gets_the_answer_sentence():
    got = reasoning_with_answer(trace(reasoning="Multiply the two counts, then add the rest."))
    assert got == "Multiply the two counts, then add the rest.\nThe answer is 19."


def test_a_teachers_own_wrong_conclusion_is_not_contradicted_by_the_gold_answer():
    wrong = trace(reasoning="2 + 3 = 6. The answer is 6.", predicted_answer="6", correct=False)
    assert reasoning_with_answer(wrong) == "2 + 3 = 6. The answer is 6."


def test_prompt_format_messages_and_its_record(tmp_path):
    fmt = PromptFormat("Be brief.", "[label] ")
    assert fmt.messages("Q?") == [{"role": "system", "content": "Be brief."},
                                  {"role": "user", "content": "[label] Q?"}]
    assert PromptFormat().messages("Q?") == [{"role": "user", "content": "Q?"}]
    (tmp_path / "rdistill_train.json").write_text(json.dumps({"prompt": fmt.to_json()}))
    assert load_prompt_format(tmp_path) == fmt
    assert load_prompt_format(tmp_path / "elsewhere") == PromptFormat()


def test_trace_file_errors_name_the_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"question": "Q", "answer": "1", "reasoning": "r"}) + "\n"
                    + json.dumps({"question": "Q", "answer": "1", "reasoning": "  "}) + "\n")
    with pytest.raises(InputError) as e:
        load_trace_data(path)
    assert e.value.line == 2 and e.value.field == "reasoning"
    path.write_text(json.dumps({"question": "Q", "answer": "1"}) + "\n")
    with pytest.raises(InputError) as e:
        load_trace_data(path)
    assert e.value.line == 1 and e.value.field == "reasoning"


# -- methods ----------------------------------------------------------------------------------------------


def test_cot_sft_keeps_every_trace_and_the_system_prompt():
    data = data_of(trace(), trace(reasoning="Another way: 19.", sample_index=1))
    recipe = cot_sft.recipe(data, settings(system_prompt="Think."), cot_sft.METHOD.options())
    examples = recipe.stages[0].examples
    assert [e.completion for e in examples] == [STEPS_3 + "\nThe answer is 19.", "Another way: 19."]
    assert examples[0].prompt == [{"role": "system", "content": "Think."}, {"role": "user", "content": "Q?"}]
    assert recipe.prompt == PromptFormat("Think.", "") and not recipe.weighted


def test_answer_only_answers_once_per_question():
    data = data_of(trace(), trace(sample_index=1), trace(question="Other?", answer="7"))
    examples = answer_only.recipe(data, settings(), answer_only.METHOD.options()).stages[0].examples
    assert [(e.prompt[-1]["content"], e.completion) for e in examples] == [("Q?", "The answer is 19."),
                                                                         ("Other?", "The answer is 7.")]


def test_step_by_step_tasks_prefixes_and_weights():
    options = step_by_step.StepByStepOptions(rationale_weight=0.25, next_step=True)
    recipe = step_by_step.recipe(data_of(trace()), settings(), options)
    examples = recipe.stages[0].examples
    by_task = {}
    for e in examples:
        by_task.setdefault(e.task, []).append(e)
    label, = by_task["label"]
    rationale, = by_task["rationale"]
    assert (label.prompt[-1]["content"], label.completion, label.weight) == ("[label] Q?", "The answer is 19.", 1.0)
    assert rationale.prompt[-1]["content"] == "[rationale] Q?" and rationale.weight == 0.25
    nexts = by_task["next_step"]
    assert [e.completion for e in nexts] == ["2 + 3 = 5", "5 * 4 = 20", "20 - 1 = 19"]
    assert nexts[1].prompt[-1]["content"].startswith("[next-step] Q?\n\nSteps so far:\nStep 1: 2 + 3 = 5\n")
    assert sum(e.weight for e in nexts) == pytest.approx(0.25)  # a trace's next steps share lambda
    assert recipe.prompt.user_prefix == "[label] " and recipe.weighted  # evaluation asks through the label task


def test_step_by_step_rejects_a_non_positive_lambda():
    with pytest.raises(RdistillError, match="rationale_weight"):
        parse_options(get_method("step_by_step"), {"rationale_weight": "0"})


def _curriculum(traces, **options):
    return curriculum.recipe(data_of(*traces), settings(), curriculum.CurriculumOptions(**options))


def test_curriculum_stages_go_from_easy_to_hard():
    reasonings = ["Step 1: a\nStep 2: b\nStep 3: c\nStep 4: d", "Step 1: a", "Step 1: a\nStep 2: b",
                  "Step 1: a\nStep 2: b\nStep 3: c", "Step 1: a\nStep 2: b\nStep 3: c\nStep 4: d\nStep 5: e",
                  "Step 1: a\nStep 2: b\nStep 3: c\nStep 4: d\nStep 5: e\nStep 6: f"]
    traces = [trace(question=f"q{i}", reasoning=r) for i, r in enumerate(reasonings)]
    recipe = _curriculum(traces, difficulty="steps", stages=3)
    steps_per_stage = [[e.completion.count("Step ") for e in stage.examples] for stage in recipe.stages]
    assert steps_per_stage == [[1, 2], [3, 4], [5, 6]]
    assert [s.name for s in recipe.stages] == ["stage 1 (steps 1-2)", "stage 2 (steps 3-4)", "stage 3 (steps 5-6)"]


def test_curriculum_by_length_and_by_field_with_equal_scores_sharing_a_stage():
    traces = [trace(question=f"q{i}", reasoning="x" * n, difficulty=d)
              for i, (n, d) in enumerate([(30, 2), (10, 1), (20, 1), (40, 3)])]
    by_length = _curriculum(traces, difficulty="length", stages=2)
    assert [[len(e.completion.split("\n")[0]) for e in s.examples] for s in by_length.stages] == [[10, 20], [30, 40]]
    by_field = _curriculum(traces, difficulty="field", stages=3, stage_epochs="1,2,3")
    assert [[e.trace_index for e in s.examples] for s in by_field.stages] == [[1, 2], [0], [3]]
    assert [s.epochs for s in by_field.stages] == [1.0, 2.0, 3.0]
    one_level = _curriculum(traces[1:3], difficulty="field", stages=2)
    assert len(one_level.stages) == 1  # two problems of the same difficulty are never split


def test_accumulated_curriculum_keeps_the_easier_stages_in_every_later_one():
    traces = [trace(question=f"q{i}", reasoning="x" * n, difficulty=d)
              for i, (n, d) in enumerate([(30, 2), (10, 1), (20, 1), (40, 3)])]
    recipe = _curriculum(traces, difficulty="field", stages=3, stage_epochs="1,1,2", accumulate=True)
    assert [[e.trace_index for e in s.examples] for s in recipe.stages] == [[1, 2], [1, 2, 0], [1, 2, 0, 3]]
    assert [s.name for s in recipe.stages] == ["stage 1 (field 1-1)", "stage 2 (field 1-2)", "stage 3 (field 1-3)"]
    assert [s.epochs for s in recipe.stages] == [1.0, 1.0, 2.0]
    assert recipe.options["accumulate"] is True
    assert parse_options(get_method("curriculum"), parse_key_values(["accumulate=true"])).accumulate is True


def test_curriculum_by_field_needs_the_field():
    with pytest.raises(RdistillError, match="no `difficulty`"):
        _curriculum([trace(difficulty=1), trace(question="b")], difficulty="field")


def test_registry_did_you_mean_and_typed_options():
    assert method_names() == ["answer_only", "contrastive", "cot_sft", "curriculum", "dpo", "kd", "opd", "orca",
                              "step_by_step"]
    with pytest.raises(UnknownNameError, match="Did you mean 'step_by_step'"):
        get_method("step_by_stp")
    assert get_method("Step-By-Step").name == "step_by_step"
    method = get_method("curriculum")
    opts = parse_options(method, parse_key_values(["stages=2", "difficulty=length", "stage_epochs=1,3"]))
    assert (opts.stages, opts.difficulty, opts.stage_epochs) == (2, "length", "1,3")
    with pytest.raises(UnknownNameError, match="Did you mean 'stages'"):
        parse_options(method, {"stagez": "3"})
    with pytest.raises(UnknownNameError, match="Known: field, length, steps"):
        parse_options(method, {"difficulty": "hard"})
    with pytest.raises(RdistillError, match="not a int"):
        parse_options(method, {"stages": "three"})
    with pytest.raises(RdistillError, match="2 values for 3 stages"):
        parse_options(method, {"stage_epochs": "1,2"})
    with pytest.raises(RdistillError, match="takes no options"):
        parse_options(get_method("cot_sft"), {"stages": 3})
    assert parse_options(get_method("step_by_step"), {"next_step": "yes"}).next_step is True


def test_settings_are_checked_before_anything_loads():
    with pytest.raises(RdistillError, match="--batch-size"):
        settings(batch_size=0).validate()
    with pytest.raises(RdistillError, match="--report-to"):
        settings(report_to=["mlflow"]).validate()
    assert settings().lr == 2e-4 and settings(lora=False).lr == 2e-5 and settings(learning_rate=1e-3).lr == 1e-3
    assert "lora_r" in settings().hyperparameters() and "lora_r" not in settings(lora=False).hyperparameters()


def test_evaluation_can_replace_the_model_cards_eval_section_and_nothing_else():
    from rdistill.train.model_card import render_model_card, replace_eval_section

    run = {"student": "offline:x", "method": "cot_sft", "method_summary": "s", "method_options": {},
           "output_name": "out", "chat_template": "student", "prompt": PromptFormat().to_json(),
           "data": {"teachers": {"t": 2}, "path": "p.jsonl", "sha256": "ab", "traces": 2, "examples": 2,
                    "dropped_too_long": 0},
           "hyperparameters": {"lora": True, "max_length": 64}, "metrics": {"final_loss": 1.5},
           "stages": [{"name": "all", "examples": 2, "steps": 1}]}
    card = render_model_card(run)
    updated = replace_eval_section(card, "| bench | accuracy |\n|---|---|\n| gsm8k | 41.0% |")
    assert "| gsm8k | 41.0% |" in updated and "Not evaluated yet" not in updated
    before, after = card.split("<!-- rdistill:eval:start -->"), updated.split("<!-- rdistill:eval:start -->")
    assert before[0] == after[0] and before[1].split("<!-- rdistill:eval:end -->")[1] == \
        after[1].split("<!-- rdistill:eval:end -->")[1]
    assert replace_eval_section(updated, "again").count("<!-- rdistill:eval:start -->") == 1


def test_example_is_trls_conversational_prompt_completion():
    example = Example([{"role": "user", "content": "Q?"}], "A.")
    assert example.conversational() == {"prompt": [{"role": "user", "content": "Q?"}],
                                        "completion": [{"role": "assistant", "content": "A."}]}


def test_imitating_methods_never_learn_from_the_rejected_side_of_pairs(tmp_path):
    from rdistill.train.examples import load_trace_data

    path = tmp_path / "pairs.jsonl"
    rows = [trace(question="q1", metadata={"pair_id": "p1", "role": "chosen"}),
            trace(question="q1", reasoning="2 + 2 = 5", metadata={"pair_id": "p1", "role": "rejected"}),
            trace(question="q2")]
    path.write_text("".join(r.model_dump_json() + "\n" for r in rows))
    data = load_trace_data(path)
    kept = data.without_rejected()
    assert [t.question for t in kept.traces] == ["q1", "q2"] and kept.sha256 == data.sha256
    assert all((t.metadata or {}).get("role") != "rejected" for t in kept.traces)
    assert get_method("dpo").pairwise and get_method("contrastive").pairwise and not get_method("cot_sft").pairwise
