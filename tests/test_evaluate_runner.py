"""`evaluate` and `rdistill eval` end to end on a tiny random transformers model served by the real `hf:`
backend (batched generation, white-box scoring), with a real response cache in a temp folder."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from rdistill.answers import check  # noqa: E402
from rdistill.evaluate.metrics import QualityItem, measure_quality  # noqa: E402
from rdistill.evaluate.options import EvalOptions  # noqa: E402
from rdistill.evaluate.problems import load_problems  # noqa: E402
from rdistill.evaluate.prompts import build_messages  # noqa: E402
from rdistill.evaluate.runner import close_client, evaluate, open_model, summary_path_for  # noqa: E402
from rdistill.jsonl import load_records  # noqa: E402
from rdistill.records import EvalResult  # noqa: E402
from support.tiny_lm import save_tiny_lm  # noqa: E402

OPTIONS = EvalOptions(max_tokens=12, faithfulness_n=2, early_answer_tokens=4)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    return str(save_tiny_lm(tmp_path_factory.mktemp("tiny") / "student"))


@pytest.fixture(scope="module")
def problems():
    return load_problems("synth:arithmetic", limit=4, steps="1-2")


def test_every_answer_is_judged_by_the_shared_checker(tiny_model, problems, tmp_path):
    run = evaluate(tiny_model, problems, bench="synth:arithmetic", options=OPTIONS, cache=tmp_path / "c.sqlite",
                   batch_size=4)
    assert [r.problem_id for r in run.results] == [p.id for p in problems]
    for r, p in zip(run.results, problems):
        verdict = check(r.prediction, p.answer, p.answer_type, p.choices)
        assert (r.extracted, r.correct) == (verdict.extracted, verdict.correct)
        assert r.usage.completion_tokens > 0 and r.difficulty == p.difficulty
        assert r.metadata["run"]["prompt_style"] == "teacher" and r.metadata["run"]["decoding"]["temperature"] == 0
        assert "n_steps" in r.metadata["steps"]
    assert run.summary["batch_size"] == 4 and run.summary["provider"] == "hf" and run.summary["local"]
    assert run.summary["accuracy"]["accuracy"]["n"] == 4
    assert run.summary["throughput"]["tokens_per_second"] > 0
    # The probes ran on the first two problems only, and the white-box probe needs an extracted answer.
    probed = [r for r in run.results if "quality" in r.metadata]
    assert [r.problem_id for r in probed] == [p.id for p in problems[:2]]
    assert all("early_answering" in r.metadata["quality"] and "coherence" in r.metadata["quality"] for r in probed)


def test_a_rerun_is_answered_from_the_cache(tiny_model, problems, tmp_path):
    cache = tmp_path / "c.sqlite"
    first = evaluate(tiny_model, problems, bench="b", options=EvalOptions(max_tokens=8, faithfulness_n=0), cache=cache)
    second = evaluate(tiny_model, problems, bench="b", options=EvalOptions(max_tokens=8, faithfulness_n=0), cache=cache)
    assert [r.prediction for r in second.results] == [r.prediction for r in first.results]
    assert all(r.usage.cached for r in second.results) and not any(r.usage.cached for r in first.results)
    model_id = second.summary["model_id"]
    assert second.summary["ledger"]["models"][model_id]["cache_hits"] == len(problems)


def test_samples_give_maj_and_pass_at_k(tiny_model, problems, tmp_path):
    run = evaluate(tiny_model, problems[:2], bench="b", options=EvalOptions(samples=3, max_tokens=6, faithfulness_n=0),
                   cache=tmp_path / "c.sqlite")
    assert sorted((r.problem_id, r.sample_index) for r in run.results) == sorted(
        (p.id, k) for p in problems[:2] for k in range(3))
    accuracy = run.summary["accuracy"]
    assert accuracy["samples"] == 3 and accuracy["pass@3"]["n"] == 2 and accuracy["maj@3"]["n"] == 2
    assert run.summary["options"]["samples"] == 3 and run.results[0].metadata["run"]["decoding"]["temperature"] > 0


def test_white_box_gain_is_measured_for_hf_models(tiny_model, problems, tmp_path):
    """With a known reasoning and answer, the four log-probabilities come from the model itself."""
    problem = problems[0]
    reasoning = problem.solution  # the gold steps, ending "The answer is N."
    client = open_model(tiny_model, cache=tmp_path / "c.sqlite", batch_size=4)
    try:
        messages = build_messages(problem, "plain")
        result = EvalResult(model="m", bench="b", problem_id=problem.id, question=problem.question,
                            answer=problem.answer, prediction=reasoning, extracted=problem.answer, correct=True)
        quality = measure_quality(client, [QualityItem(problem, messages, result)], truncation_points=(0.0, 0.5),
                                  early_answer_tokens=4, max_tokens=6)[problem.id]
        logprob = quality["logprob"]
        assert math.isfinite(logprob["gain"]) and logprob["logp_with_reasoning"] < 0
        assert logprob["gain"] == pytest.approx(logprob["logp_with_reasoning"] - logprob["logp_without_reasoning"])
        assert set(quality["early_answering"]["answers"]) == {"0", "0.5"}
        assert quality["corrupted_step"]["original_answer"] == problem.answer
    finally:
        close_client(client)


def test_cli_eval_writes_results_and_summary(cli, tiny_model, tmp_path):
    out = tmp_path / "res" / "tiny.jsonl"
    proc = cli("eval", "--model", tiny_model, "--bench", "synth:coin_flip", "--limit", "3", "--steps", "1-2",
               "--max-tokens", "8", "--faithfulness-n", "1", "--role", "student", "-o", str(out),
               env={"RDISTILL_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout and "n=3" in proc.stdout
    assert "[teacher prompt]" in proc.stdout  # printed as text, not swallowed as console markup
    results = load_records(out, EvalResult)
    assert len(results) == 3 and {r.answer_type for r in results} == {"boolean"}
    assert all(r.metadata["run"]["role"] == "student" for r in results)
    summary = json.loads(summary_path_for(out).read_text())
    assert summary["accuracy"]["accuracy"]["n"] == 3 and summary["bench"] == "synth:coin_flip"


def test_cli_eval_both_prompt_styles_for_a_baseline(cli, tiny_model, tmp_path):
    out = tmp_path / "base.jsonl"
    proc = cli("eval", "--model", tiny_model, "--bench", "synth:arithmetic", "--limit", "2", "--max-tokens", "6",
               "--faithfulness-n", "0", "--prompt-style", "both", "-o", str(out),
               env={"RDISTILL_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    plain, teacher = load_records(tmp_path / "base.plain.jsonl", EvalResult), load_records(
        tmp_path / "base.teacher.jsonl", EvalResult)
    assert {r.metadata["run"]["prompt_style"] for r in plain} == {"plain"}
    assert {r.metadata["run"]["prompt_style"] for r in teacher} == {"teacher"}
    assert all(r.metadata["run"]["role"] == "baseline" for r in plain + teacher)
    assert "better prompt" in proc.stdout


def test_cli_eval_reports_bad_input_in_one_line(cli, tmp_path):
    proc = cli("eval", "--model", "offline:smollm2-135m-instruct", "--bench", "gsm9k", "-o", str(tmp_path / "x.jsonl"))
    assert proc.returncode == 2
    assert "unknown benchmark 'gsm9k'" in proc.stderr and "gsm8k" in proc.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_a_judge_model_is_asked_about_the_steps_the_checker_cannot_check(tiny_model, problems, tmp_path):
    options = EvalOptions(max_tokens=12, faithfulness_n=2, early_answer_tokens=4, judge=tiny_model)
    run = evaluate(tiny_model, problems, bench="b", options=options, cache=tmp_path / "c.sqlite")
    assert run.summary["judge"] == run.summary["model_id"]
    probed = [r.metadata["quality"] for r in run.results if "quality" in r.metadata]
    asked = [q for q in probed if q["coherence"]["n_steps"] > q["coherence"]["n_checked"]]
    assert asked, "the random model's answers should hold steps without arithmetic"
    for quality in asked:
        assert isinstance(quality["judge_reply"], str)  # a random model's reply: kept, parsed to whatever it says
        assert all(0.0 <= s <= 1.0 for s in quality["coherence"]["step_scores"].values())


def test_cli_eval_without_output_writes_under_runs(cli, tiny_model, tmp_path):
    proc = cli("eval", "--model", tiny_model, "--bench", "synth:arithmetic", "--limit", "2", "--max-tokens", "4",
               "--faithfulness-n", "0", "--prompt-style", "plain", cwd=tmp_path,
               env={"RDISTILL_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    [written] = (tmp_path / "runs" / "eval").glob("*.jsonl")
    assert written.name.endswith(".synth-arithmetic.plain.jsonl")
    assert len(load_records(written, EvalResult)) == 2 and summary_path_for(written).exists()


def test_cli_eval_asks_a_multi_task_student_through_the_task_named(cli, tmp_path):
    from rdistill.evaluate.comparison import load_result_set
    from rdistill.train.prompting import RUN_CONFIG_FILE

    student = save_tiny_lm(tmp_path / "student")
    (student / RUN_CONFIG_FILE).write_text(json.dumps({"prompt": {
        "system_prompt": None, "user_prefix": "[label] ", "tasks": {"label": "[label] ", "rationale": "[rationale] "}}}))
    common = ("--bench", "synth:arithmetic", "--limit", "2", "--max-tokens", "4", "--faithfulness-n", "0",
              "--prompt-style", "trained")
    env = {"RDISTILL_CACHE": str(tmp_path / "cache")}
    runs = {}
    for task in (None, "rationale"):
        out = tmp_path / f"{task}.jsonl"
        proc = cli("eval", "--model", str(student), *common, *(["--student-task", task] if task else []),
                   "-o", str(out), env=env)
        assert proc.returncode == 0, proc.stderr
        runs[task] = load_result_set(out)
    assert {r.metadata["run"]["student_task"] for r in runs["rationale"].results} == {"rationale"}
    assert runs[None].run["prompt_id"] != runs["rationale"].run["prompt_id"]
    # a report shows them as two rows of the same student
    assert (runs[None].prompt_style, runs["rationale"].prompt_style) == ("trained", "trained:rationale")

    bad = tmp_path / "bad.jsonl"
    proc = cli("eval", "--model", str(student), *common, "--student-task", "next_step", "-o", str(bad), env=env)
    assert proc.returncode == 2
    assert "no task 'next_step' (its tasks: label, rationale)" in proc.stderr and not bad.exists()
