"""Fair comparisons: same problem ids, same decoding, and the better of the baseline's two prompts."""

from __future__ import annotations

import pytest

from rdistill.errors import InputError
from rdistill.evaluate.comparison import ComparisonError, compare, infer_role, result_set

GREEDY = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 512, "samples": 1, "seed": 0}


def results(model: str, correct: list[bool], *, style: str = "teacher", role: str | None = None,
            ids: list[str] | None = None, decoding: dict | None = None, bench: str = "gsm8k"):
    from rdistill.records import EvalResult

    ids = ids or [f"p{i}" for i in range(len(correct))]
    run = {"prompt_style": style, "decoding": decoding or GREEDY, "role": role, "provider": "offline"}
    return [EvalResult(model=model, bench=bench, problem_id=pid, question="q", answer="1",
                       prediction="The answer is 1" if ok else "The answer is 2", extracted="1" if ok else "2",
                       correct=ok, metadata={"run": run}) for pid, ok in zip(ids, correct)]


def test_same_problems_and_decoding_compare_cleanly():
    sets = [result_set(results("teacher", [True, True, False], role="teacher")),
            result_set(results("student", [True, False, False], role="student"))]
    [bench] = compare(sets)
    assert bench.issues == [] and bench.problem_ids == {"p0", "p1", "p2"}


def test_different_problem_ids_are_refused_with_examples():
    sets = [result_set(results("a", [True, True], ids=["p1", "p2"])),
            result_set(results("b", [True, True], ids=["p1", "p3"]))]
    with pytest.raises(ComparisonError) as info:
        compare(sets)
    message = str(info.value)
    assert "p2" in message and "p3" in message and "--allow-mismatch" in message


def test_different_decoding_is_refused_naming_the_setting():
    sets = [result_set(results("a", [True])), result_set(results("b", [True], decoding={**GREEDY, "max_tokens": 64}))]
    with pytest.raises(ComparisonError, match="max_tokens 64 vs 512"):
        compare(sets)


def test_allowed_mismatch_compares_only_common_problems_and_says_so():
    sets = [result_set(results("a", [True, False, True], ids=["p1", "p2", "p3"])),
            result_set(results("b", [False, False], ids=["p1", "p2"]))]
    [bench] = compare(sets, allow_mismatch=True)
    assert bench.problem_ids == {"p1", "p2"} and len(bench.issues) == 1
    assert bench.sets[0].accuracy["accuracy"]["value"] == 0.5 and bench.sets[0].accuracy["accuracy"]["n"] == 2


def test_the_better_baseline_prompt_is_chosen_and_both_are_recorded():
    sets = [result_set(results("base", [True, False, False, False], style="plain", role="baseline")),
            result_set(results("base", [True, True, False, False], style="teacher", role="baseline")),
            result_set(results("student", [True, True, True, False], role="student"))]
    [bench] = compare(sets)
    choice = bench.baselines["base"]
    assert choice["chosen"] == "base [teacher]"
    assert choice["candidates"] == {"base [plain]": 0.25, "base [teacher]": 0.5}


def test_a_tie_between_baseline_prompts_goes_to_the_plain_one():
    sets = [result_set(results("base", [True, False], style="teacher", role="baseline")),
            result_set(results("base", [False, True], style="plain", role="baseline"))]
    assert compare(sets)[0].baselines["base"]["chosen"] == "base [plain]"


def test_benchmarks_are_compared_separately():
    sets = [result_set(results("a", [True], bench="gsm8k")), result_set(results("a", [True, True], bench="svamp"))]
    assert [b.bench for b in compare(sets)] == ["gsm8k", "svamp"]


def test_one_file_holds_one_model_and_prompt():
    mixed = results("a", [True]) + results("b", [True], ids=["p9"])
    with pytest.raises(InputError, match="model"):
        result_set(mixed)


def test_a_model_folder_is_a_student(tmp_path):
    assert infer_role(str(tmp_path), {"provider": "hf"}) == "student"
    assert infer_role("openai:gpt-4o", {"provider": "openai"}) is None
    assert infer_role(f"llamaserver:{tmp_path}", {"provider": "llama-server"}) == "student"
    assert infer_role("llamaserver:offline:smollm2-135m-instruct", {"provider": "llama-server"}) is None
