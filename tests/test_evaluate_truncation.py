"""Answers cut off at max_tokens: recorded per answer from the backend's finish reason (or, when a backend gives
none, from its token count), and result files written before the field existed still load, as unknown."""

from __future__ import annotations

import json

import pytest

from rdistill.evaluate.runner import _to_result, was_cut_off
from rdistill.jsonl import load_records
from rdistill.records import EvalResult, Problem
from rdistill.teachers.base import Completion

PROBLEM = Problem(id="p1", question="Tom has 2 apples and buys 3 more. How many does he have?", answer="5")
RUN_INFO = {"model": "m", "model_id": "m", "decoding": {"max_tokens": 192}}


def answer(completion) -> EvalResult:
    return _to_result(PROBLEM, 0, completion, "b", RUN_INFO)


def test_an_answer_that_finished_by_length_is_recorded_as_cut_off():
    cut = answer(Completion(text="1. 2 + 3 = 5\n2. Now let us check again, 2 + 3", completion_tokens=192,
                            finish_reason="length"))
    assert cut.truncated is True and cut.metadata["finish_reason"] == "length"
    whole = answer(Completion(text="2 + 3 = 5. The answer is 5.", completion_tokens=12, finish_reason="stop"))
    assert whole.truncated is False and whole.correct


@pytest.mark.parametrize("reason,tokens,expected", [
    ("length", 50, True),        # OpenAI, llama.cpp, llama-server, transformers
    ("max_tokens", 192, True),   # Anthropic
    ("stop", 192, False),        # ended by itself exactly at the limit
    (None, 192, True),           # no reason given: judged by the token count
    (None, 191, False),
])
def test_cut_off_comes_from_the_finish_reason_else_the_token_count(reason, tokens, expected):
    assert was_cut_off(Completion(text="x", completion_tokens=tokens, finish_reason=reason), 192) is expected


def test_a_failed_call_has_no_known_finish():
    assert answer(TimeoutError("no reply")).truncated is None


def test_result_files_without_the_field_still_load_as_unknown(tmp_path):
    record = answer(Completion(text="The answer is 5.", completion_tokens=5, finish_reason="stop")).to_json_dict()
    del record["truncated"]  # as written by rdistill before the field existed
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(record) + "\n")
    [loaded] = load_records(path, EvalResult)
    assert loaded.truncated is None and loaded.correct
