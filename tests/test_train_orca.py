"""Orca explanation tuning (train method orca) with a tiny random student: each example keeps its trace's own
system prompt, the record lists the styles, and progressive learning cuts stages from easy to hard."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from test_train_random_student import make_tiny_student, one_torch_thread, write_traces  # noqa: E402,F401

from rdistill.jsonl import write_records  # noqa: E402
from rdistill.train import TrainSettings, train_student  # noqa: E402
from rdistill.train.examples import load_trace_data  # noqa: E402
from rdistill.train.orca import OrcaOptions, recipe  # noqa: E402

STYLES = {"step_by_step": "Think step by step.", "explain_like_a_teacher": "Explain it like a patient teacher."}


@pytest.fixture(scope="module")
def orca_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("orca")
    gold = write_traces(root / "gold.jsonl", n=12)
    rows = [json.loads(line) for line in gold.read_text().splitlines()]
    names = [*STYLES, None]  # a third of the traces have no system prompt of their own
    for i, row in enumerate(rows):
        style = names[i % 3]
        row.update(style=style, system_prompt=STYLES.get(style), strategy="orca")
    traces = root / "orca.jsonl"
    write_records(traces, rows)
    return traces, make_tiny_student(root / "student", gold)


def settings(student, out, **overrides) -> TrainSettings:
    return TrainSettings(**{"student": str(student), "output_dir": out, "epochs": 1, "batch_size": 4,
                            "max_steps": 3, "save_steps": 50, "system_prompt": "Be terse.", **overrides})


def test_every_example_keeps_its_traces_system_prompt(orca_files, tmp_path):
    traces, student = orca_files
    data = load_trace_data(traces)
    made = recipe(data, settings(student, tmp_path / "x"), OrcaOptions())
    systems = [example.prompt[0]["content"] for example in made.stages[0].examples]
    assert systems == [STYLES.get(t.style, "Be terse.") for t in data.traces]
    assert made.prompt.system_prompt == "Be terse."  # evaluation asks with the run's prompt
    assert made.record["styles"] == {"default": {"system_prompt": "Be terse.", "examples": 4},
                                     "explain_like_a_teacher": {"system_prompt": STYLES["explain_like_a_teacher"],
                                                                "examples": 4},
                                     "step_by_step": {"system_prompt": STYLES["step_by_step"], "examples": 4}}


def test_progressive_learning_trains_stages_from_easy_to_hard(orca_files, tmp_path):
    traces, student = orca_files
    result = train_student(traces, settings(student, tmp_path / "orca", max_steps=None),
                           method="orca", options={"curriculum": True, "stages": 2})
    record = json.loads((tmp_path / "orca" / "rdistill_train.json").read_text())
    assert record["method"] == "orca" and record["method_options"]["curriculum"] is True
    assert [s["name"].split(" (")[0] for s in record["stages"]] == ["stage 1", "stage 2"]
    assert sum(s["examples"] for s in record["stages"]) == 12 and result.steps >= 2
    assert set(record["method_measured"]["styles"]) == {"default", *STYLES}
    assert record["prompt"]["system_prompt"] == "Be terse."
