"""Evaluation with real small models (slow): `rdistill eval` on GSM8K, ARC-Challenge and StrategyQA with
SmolLM2-135M; faithfulness that tells real reasoning from unrelated filler; and the report of two real models
opened in headless Chromium."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from rdistill.answers import check
from rdistill.evaluate.metrics import QualityItem, measure_quality
from rdistill.evaluate.options import EvalOptions
from rdistill.evaluate.problems import load_problems
from rdistill.evaluate.prompts import build_messages
from rdistill.evaluate.runner import close_client, evaluate, open_model, summary_path_for
from rdistill.jsonl import load_records
from rdistill.records import EvalResult
from rdistill.models.catalog import is_installed

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

SMOLLM2 = "offline:smollm2-135m-instruct"
FILLER = ("The garden was quiet in the early morning.\nBirds sang in the tall trees while a light wind moved the "
          "leaves.\nA cat slept on the warm wall by the gate.\nLater the clouds came and the air grew cool.")


def need(model: str) -> None:
    if not is_installed(model.removeprefix("offline:")):
        pytest.skip(f"offline model {model} is not installed (see `rdistill models`)")


@pytest.mark.parametrize("bench, where", [("gsm8k", "gsm8k/test.jsonl"), ("arc_challenge", "arc_challenge"),
                                          ("strategyqa", "strategyqa")])
def test_eval_writes_judged_predictions(cli, shared_data, tmp_path, bench, where):
    need(SMOLLM2)
    out = tmp_path / f"{bench}.jsonl"
    proc = cli("eval", "--model", SMOLLM2, "--bench", bench, "--path", str(shared_data / where), "--limit", "5",
               "--max-tokens", "160", "--faithfulness-n", "1", "-o", str(out),
               env={"RDISTILL_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert "n=5" in proc.stdout
    results = load_records(out, EvalResult)
    assert len(results) == 5 and summary_path_for(out).exists()
    for r in results:
        verdict = check(r.prediction, r.answer, r.answer_type, r.choices)
        assert (r.extracted, r.correct) == (verdict.extracted, verdict.correct)
        if bench == "arc_challenge":
            assert r.answer_type == "choice" and r.extracted in (None, *"ABCDE"[:len(r.choices)])
            assert r.correct == (r.extracted == r.answer)
        if bench == "strategyqa":
            assert r.answer_type == "boolean" and r.extracted in (None, "yes", "no")
            assert r.correct == (r.extracted == r.answer)
    assert sum("quality" in r.metadata for r in results) == 1


def test_early_answering_tells_reasoning_from_unrelated_filler(tmp_path):
    """The same model, the same problems: with its own reasoning the answer moves as the reasoning is cut; with
    filler text in its place the answer does not depend on how much of it is shown."""
    need(SMOLLM2)
    problems = load_problems("synth:arithmetic", limit=6, steps="2-3")
    client = open_model(SMOLLM2, cache=tmp_path / "cache.sqlite")
    try:
        run = evaluate(SMOLLM2, problems, bench="synth:arithmetic", client=client,
                       options=EvalOptions(max_tokens=200, faithfulness_n=0))
        items = [QualityItem(p, build_messages(p, "teacher"), r) for p, r in zip(problems, run.results)]
        filler = [replace(item, result=item.result.model_copy(update={"prediction": FILLER})) for item in items]
        scores = {}
        for name, probe in (("reasoning", items), ("filler", filler)):
            quality = measure_quality(client, probe, truncation_points=(0.0, 0.25, 0.5, 0.75),
                                      early_answer_tokens=32, max_tokens=200)
            scores[name] = statistics.mean(quality[p.id]["early_answering"]["score"] for p in problems)
    finally:
        close_client(client)
    assert scores["reasoning"] > scores["filler"], scores


def test_white_box_gain_is_larger_for_real_reasoning_than_for_filler(tmp_path):
    """log P(answer | q, reasoning) - log P(answer | q) with SmolLM2 through transformers: the gold steps raise
    the probability of their answer; unrelated filler does not raise it as much."""
    pytest.importorskip("transformers")
    need(SMOLLM2)
    problems = load_problems("synth:arithmetic", limit=6, steps="2-3")
    client = open_model(f"hf:{SMOLLM2}", cache=tmp_path / "cache.sqlite", batch_size=8)
    try:
        gains = {}
        for name, reasoning in (("reasoning", None), ("filler", FILLER)):
            items = []
            for p in problems:
                text = reasoning or p.solution
                result = EvalResult(model="m", bench="b", problem_id=p.id, question=p.question, answer=p.answer,
                                    prediction=text, extracted=p.answer, correct=True)
                items.append(QualityItem(p, build_messages(p, "plain"), result))
            quality = measure_quality(client, items, truncation_points=(0.0,), early_answer_tokens=4, max_tokens=8)
            gains[name] = statistics.mean(quality[p.id]["logprob"]["gain"] for p in problems)
    finally:
        close_client(client)
    assert gains["reasoning"] > gains["filler"] + 1.0, gains


def test_report_of_two_real_models_renders_in_chromium(tmp_path):
    from support.browser import find_chromium, image_report, screenshot

    from rdistill.report import build_report

    teacher = "offline:qwen2.5-coder-0.5b-instruct"
    need(SMOLLM2)
    need(teacher)
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed: run scripts/install_browser.sh")
    problems = load_problems("synth:arithmetic", limit=4, steps="1-3")
    options = EvalOptions(max_tokens=128, faithfulness_n=1)
    cache = tmp_path / "cache.sqlite"
    evaluate(teacher, problems, bench="synth:arithmetic", cache=cache,
             options=replace(options, role="teacher")).write(tmp_path / "run" / "teacher.jsonl")
    evaluate(SMOLLM2, problems, bench="synth:arithmetic", cache=cache,
             options=replace(options, role="baseline")).write(tmp_path / "run" / "smollm2.jsonl")
    files = build_report([tmp_path / "run"], tmp_path / "report")
    page = image_report(chromium, files.html)
    assert len(page["images"]) == 4 and all(i["naturalWidth"] > 100 for i in page["images"]), page
    shot = screenshot(chromium, files.html, ARTIFACTS / "report_real_models.png")
    assert shot.stat().st_size > 50_000
