"""The generation engine on real files, driven by a real `Backend` that answers from a fixed table.

The table backend implements the teacher protocol (it is what a deterministic teacher would be), so the real
`TeacherClient` — cache, ledger, budget, concurrency — runs unchanged; only the model is replaced by a lookup,
which makes adaptive stopping, resuming and budgets testable to the exact call. The same paths run on a real
model in test_generate_models.py and test_generate_cli.py.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Callable

import pytest

from rdistill.errors import InputError, UnknownNameError
from rdistill.generate import GenerationOptions, Shard, generate_traces
from rdistill.generate.sharding import select_shard
from rdistill.records import Problem
from rdistill.steps import split_steps
from rdistill.teachers.base import Completion, Request
from rdistill.teachers.cache import ResponseCache
from rdistill.teachers.client import TeacherClient
from rdistill.teachers.ledger import Ledger
from rdistill.teachers.prices import Price

Answerer = Callable[[Problem, Request], str]


class TableBackend:
    """A teacher that answers each request from `answer(problem, request)`; records every call it receives."""

    provider = "table"
    model = "t"
    default_concurrency = 4

    def __init__(self, problems: list[Problem], answer: Answerer, *, local: bool = True, delay: float = 0.0):
        self.problems, self.answer, self.local, self.delay = problems, answer, local, delay
        self.calls: list[tuple[str, int]] = []  # (problem id, sample index)
        self.in_flight: set[str] = set()
        self.max_problems_in_flight = 0

    def problem_of(self, request: Request) -> Problem:
        user = request.messages[-1][1]
        return next(p for p in self.problems if p.question in user)

    async def complete(self, request: Request) -> Completion:
        problem = self.problem_of(request)
        self.calls.append((problem.id, request.sample_index))
        self.in_flight.add(problem.id)
        self.max_problems_in_flight = max(self.max_problems_in_flight, len(self.in_flight))
        try:
            await asyncio.sleep(self.delay)
            text = self.answer(problem, request)
        finally:
            self.in_flight.discard(problem.id)
        return Completion(text=text, prompt_tokens=100, completion_tokens=20, finish_reason="stop")

    async def aclose(self) -> None:
        pass


def problems(n: int = 4) -> list[Problem]:
    return [Problem(id=f"p{i}", question=f"Sam has {i + 2} apples and buys {i + 3} more. How many now?",
                    answer=str(2 * i + 5), domain="math") for i in range(n)]


def solution(problem: Problem, answer: str | int) -> str:
    a, b = problem.question.split()[2], problem.question.split()[6]
    return f"Step 1: {a} + {b} = {int(a) + int(b)}\nThe answer is {answer}."


def always_right(problem: Problem, request: Request) -> str:
    return solution(problem, problem.answer)


def client_for(backend: TableBackend, **kwargs) -> TeacherClient:
    return TeacherClient(backend, **kwargs)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ------------------------------------------------------------------------------------------------ fixed

def test_fixed_samples_write_one_checked_trace_per_sample_with_votes(tmp_path):
    ps = problems(2)
    answers = {0: "{gold}", 1: "${gold}.00", 2: "{wrong}"}  # "7" and "$7.00" must vote together

    def answer(problem, request):
        text = answers[request.sample_index].format(gold=problem.answer, wrong=int(problem.answer) + 1)
        return solution(problem, text)

    backend = TableBackend(ps, answer)
    out = tmp_path / "t.jsonl"
    summary = generate_traces(ps, client_for(backend), "cot", GenerationOptions(samples=3), out)
    assert summary.traces_written == 6 and summary.calls == 6 and summary.complete
    rows = lines(out)
    assert Counter((r["problem_id"], r["sample_index"]) for r in rows) == {(p.id, k): 1 for p in ps for k in range(3)}
    for r in rows:
        m = r["metadata"]
        assert r["teacher"] == "table:t" and r["strategy"] == "cot" and r["steps"] == split_steps(r["reasoning"])
        assert r["system_prompt"] and r["usage"]["prompt_tokens"] == 100 and r["usage"]["completion_tokens"] == 20
        assert m["domain"] == "math" and m["n_votes"] == 3 and m["vote_share"] == pytest.approx(2 / 3, abs=1e-3)
        assert m["majority_correct"] is True
        assert m["agrees_with_majority"] is (r["sample_index"] != 2)
        assert m["agrees_with_gold"] is r["correct"] is (r["sample_index"] != 2)


def test_one_sample_is_greedy_and_has_no_vote(tmp_path):
    ps = problems(1)
    seen: list[Request] = []
    backend = TableBackend(ps, lambda p, r: seen.append(r) or always_right(p, r))
    generate_traces(ps, client_for(backend), "cot", GenerationOptions(), tmp_path / "t.jsonl")
    assert seen[0].params.temperature == 0.0
    assert "vote_share" not in lines(tmp_path / "t.jsonl")[0]["metadata"]


# --------------------------------------------------------------------------------------------- adaptive

def adaptive_answers(problem: Problem, request: Request) -> str:
    """p0: always right (easy). p1: a different answer every time (never agrees). p2: wrong first, then right."""
    k = request.sample_index
    if problem.id == "p0":
        return solution(problem, problem.answer)
    if problem.id == "p1":
        return solution(problem, 100 + k)
    return solution(problem, problem.answer if k >= 1 else 99)


def test_adaptive_stops_easy_problems_early_and_hard_ones_at_the_cap(tmp_path):
    ps = problems(3)
    backend = TableBackend(ps, adaptive_answers)
    options = GenerationOptions(adaptive=True, vote_threshold=0.7, max_samples=6)
    summary = generate_traces(ps, client_for(backend), "cot", options, tmp_path / "t.jsonl")
    calls = Counter(pid for pid, _ in backend.calls)
    # p0: 4 agreeing samples (Beta posterior 0.969 >= 0.95). p1: three different answers, and 3 more samples
    # could not give any answer 70% of 6 (futile). p2: 99 then 9s: 4 against 1 is not yet decisive, so the cap.
    assert calls == {"p0": 4, "p1": 3, "p2": 6}
    assert summary.calls == 13 and summary.traces_written == 13
    rows = lines(tmp_path / "t.jsonl")
    stops = {r["problem_id"]: (r["metadata"]["adaptive_stop"], r["metadata"]["n_samples"]) for r in rows}
    assert stops == {"p0": ("agreement", 4), "p1": ("futile", 3), "p2": ("cap", 6)}
    p2 = [r for r in rows if r["problem_id"] == "p2"]
    assert all(abs(r["metadata"]["vote_share"] - 5 / 6) < 1e-3 and r["metadata"]["majority_correct"] for r in p2)


def test_adaptive_with_a_small_cap_stops_decided_and_hopeless_problems_early(tmp_path):
    ps = problems(3)
    backend = TableBackend(ps, adaptive_answers)
    options = GenerationOptions(adaptive=True, vote_threshold=0.7, max_samples=5)
    generate_traces(ps, client_for(backend), "cot", options, tmp_path / "t.jsonl")
    # p0: 4 agreeing. p1: 3 different answers, so no answer can reach 70% of 5. p2: 99 then 9s up to the cap.
    assert Counter(pid for pid, _ in backend.calls) == {"p0": 4, "p1": 3, "p2": 5}


def test_adaptive_settle_rule_stops_once_the_majority_cannot_change(tmp_path):
    ps = problems(3)
    backend = TableBackend(ps, adaptive_answers)
    options = GenerationOptions(adaptive=True, vote_threshold=0.7, max_samples=5, settle=True, stop_futile=False,
                                min_agreeing=2)
    generate_traces(ps, client_for(backend), "cot", options, tmp_path / "t.jsonl")
    # p0: 3 agreeing with 2 left: no 2 samples can overturn it. p2: 99, 9, 9 (a lead of 1), then one more 9.
    assert Counter(pid for pid, _ in backend.calls) == {"p0": 3, "p1": 5, "p2": 4}


def test_adaptive_gold_shortcut_stops_at_the_first_sample_matching_gold(tmp_path):
    ps = problems(3)
    backend = TableBackend(ps, adaptive_answers)
    options = GenerationOptions(adaptive=True, vote_threshold=0.7, max_samples=6, adaptive_gold=True)
    generate_traces(ps, client_for(backend), "cot", options, tmp_path / "t.jsonl")
    calls = Counter(pid for pid, _ in backend.calls)
    # p0: its first sample matches gold. p2: 99 is wrong, 9 matches (one sample per round). p1: never, so the cap.
    assert calls == {"p0": 1, "p1": 6, "p2": 2}
    stop = {r["problem_id"]: r["metadata"]["adaptive_stop"] for r in lines(tmp_path / "t.jsonl")}
    assert stop == {"p0": "gold", "p1": "cap", "p2": "gold"}


def test_adaptive_rounds_of_different_problems_run_concurrently(tmp_path):
    ps = problems(4)
    backend = TableBackend(ps, adaptive_answers, delay=0.02)
    generate_traces(ps, client_for(backend, concurrency=4), "cot", GenerationOptions(adaptive=True, max_samples=4),
                    tmp_path / "t.jsonl")
    assert backend.max_problems_in_flight >= 2


def test_adaptive_and_samples_together_is_an_input_error():
    with pytest.raises(InputError, match="max-samples"):
        GenerationOptions(adaptive=True, samples=3)


# ------------------------------------------------------------------------------------------------ resume

def test_resume_after_a_torn_write_calls_only_for_what_is_missing(tmp_path):
    ps = problems(4)
    out = tmp_path / "t.jsonl"
    generate_traces(ps, client_for(TableBackend(ps, always_right)), "cot", GenerationOptions(samples=2), out)
    full = out.read_text().splitlines(keepends=True)
    assert len(full) == 8
    # What a crash leaves: the first problems' lines, then half of a line.
    out.write_text("".join(full[:3]) + full[3][: len(full[3]) // 2])

    backend = TableBackend(ps, always_right)  # no cache: every call it receives is a real call
    summary = generate_traces(ps, client_for(backend), "cot", GenerationOptions(samples=2), out)
    assert sorted(backend.calls) == sorted({(p.id, k) for p in ps for k in range(2)} - {("p0", 0), ("p0", 1), ("p1", 0)})
    assert summary.reused == 1 and summary.already_done == 1  # p1 sample 0 reused; p0 complete
    rows = lines(out)  # every line parses: the torn tail was cut off
    assert Counter((r["problem_id"], r["sample_index"]) for r in rows) == {(p.id, k): 1 for p in ps for k in range(2)}

    again = TableBackend(ps, always_right)
    summary = generate_traces(ps, client_for(again), "cot", GenerationOptions(samples=2), out)
    assert again.calls == [] and summary.already_done == 4 and summary.traces_written == 0


def test_a_rerun_into_a_new_file_costs_no_calls_with_the_cache(tmp_path):
    ps = problems(3)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    first = TableBackend(ps, always_right)
    generate_traces(ps, client_for(first, cache=cache), "cot", GenerationOptions(samples=2), tmp_path / "a.jsonl")
    second = TableBackend(ps, always_right)
    summary = generate_traces(ps, client_for(second, cache=cache), "cot", GenerationOptions(samples=2),
                              tmp_path / "b.jsonl")
    assert len(first.calls) == 6 and second.calls == [] and summary.cache_hits == 6 and summary.calls == 0
    a = [{k: v for k, v in r.items() if k != "usage"} for r in lines(tmp_path / "a.jsonl")]
    b = [{k: v for k, v in r.items() if k != "usage"} for r in lines(tmp_path / "b.jsonl")]
    assert sorted(map(json.dumps, a)) == sorted(map(json.dumps, b))
    assert all(r["usage"]["cached"] for r in lines(tmp_path / "b.jsonl"))


def test_more_samples_later_extends_the_vote_over_old_and_new(tmp_path):
    ps = problems(1)
    out = tmp_path / "t.jsonl"
    generate_traces(ps, client_for(TableBackend(ps, adaptive_answers)), "cot", GenerationOptions(samples=2), out)
    backend = TableBackend(ps, adaptive_answers)
    generate_traces(ps, client_for(backend), "cot", GenerationOptions(samples=3), out)
    assert backend.calls == [("p0", 2)]
    assert [r["metadata"]["n_votes"] for r in lines(out)] == [2, 2, 3]


# ------------------------------------------------------------------------------------------------ budget

def test_the_budget_stops_the_run_and_keeps_everything_answered(tmp_path):
    ps = problems(6)
    prices = {"table:t": Price(1000.0, 1000.0)}  # $0.12 per call: 100 prompt + 20 completion tokens
    backend = TableBackend(ps, always_right, local=False)
    client = client_for(backend, ledger=Ledger(budget_usd=1.0), prices=prices, concurrency=1)
    out = tmp_path / "t.jsonl"
    summary = generate_traces(ps, client, "cot", GenerationOptions(samples=2, max_tokens=20), out)
    assert summary.budget_exceeded.startswith("budget of $1.0000 reached") and not summary.complete
    written = lines(out)
    assert 0 < len(written) == len(backend.calls) < 12  # every answered call is in the file, nothing more
    assert summary.cost_usd <= 1.0

    more = TableBackend(ps, always_right, local=False)
    summary = generate_traces(ps, client_for(more, prices=prices), "cot", GenerationOptions(samples=2, max_tokens=20), out)
    assert summary.complete and len(more.calls) == 12 - len(backend.calls)
    assert Counter((r["problem_id"], r["sample_index"]) for r in lines(out)) == {(p.id, k): 1 for p in ps for k in range(2)}


def test_a_failing_sample_is_counted_and_retried_by_the_next_run(tmp_path):
    ps = problems(2)

    def flaky(problem, request):
        if problem.id == "p1" and request.sample_index == 1:
            raise ValueError("malformed response")
        return always_right(problem, request)

    out = tmp_path / "t.jsonl"
    summary = generate_traces(ps, client_for(TableBackend(ps, flaky)), "cot", GenerationOptions(samples=2), out)
    assert summary.failures == 1 and "malformed response" in summary.first_error and len(lines(out)) == 3
    fixed = TableBackend(ps, always_right)
    generate_traces(ps, client_for(fixed), "cot", GenerationOptions(samples=2), out)
    assert fixed.calls == [("p1", 1)] and len(lines(out)) == 4


# ------------------------------------------------------------------------------------------ other strategies

def test_rationalize_shows_the_gold_answer_and_marks_traces_hinted(tmp_path):
    ps = problems(2)
    prompts: list[str] = []
    backend = TableBackend(ps, lambda p, r: prompts.append(r.messages[-1][1]) or solution(p, p.answer))
    generate_traces(ps, client_for(backend), "rationalize", GenerationOptions(), tmp_path / "t.jsonl")
    assert all(f"Correct answer: {p.answer}" in text for p, text in zip(ps, prompts))
    rows = lines(tmp_path / "t.jsonl")
    assert all(r["hinted"] and r["correct"] and r["strategy"] == "rationalize" for r in rows)


def test_rationalize_refuses_a_problem_without_gold_before_any_call(tmp_path):
    ps = problems(2) + [Problem(id="nogold", question="Why is the sky blue?", answer="")]
    backend = TableBackend(ps, always_right)
    with pytest.raises(InputError, match="nogold"):
        generate_traces(ps, client_for(backend), "rationalize", GenerationOptions(), tmp_path / "t.jsonl")
    assert backend.calls == [] and not (tmp_path / "t.jsonl").exists()


def test_orca_cycles_through_the_styles_and_records_them(tmp_path):
    ps = problems(1)
    backend = TableBackend(ps, always_right)
    generate_traces(ps, client_for(backend), "orca", GenerationOptions(), tmp_path / "t.jsonl")
    rows = lines(tmp_path / "t.jsonl")
    assert [r["style"] for r in rows] == ["step_by_step", "explain_like_a_teacher", "critical_thinking",
                                          "expert_analysis"]
    assert len({r["system_prompt"] for r in rows}) == 4


def test_domain_code_asks_for_a_python_program_and_records_the_domain(tmp_path):
    ps = problems(1)
    seen: list[Request] = []
    backend = TableBackend(ps, lambda p, r: seen.append(r) or always_right(p, r))
    generate_traces(ps, client_for(backend), "domain:code", GenerationOptions(), tmp_path / "t.jsonl")
    assert "```python" in seen[0].messages[-1][1] and "Python" in seen[0].messages[0][1]
    row = lines(tmp_path / "t.jsonl")[0]
    assert row["strategy"] == "domain:code" and row["metadata"]["domain"] == "code"


def test_an_unknown_domain_or_strategy_names_the_known_ones(tmp_path):
    ps = problems(1)
    for spec, known in (("domain:astrology", "medical"), ("cott", "cot")):
        with pytest.raises(UnknownNameError, match=known):
            generate_traces(ps, client_for(TableBackend(ps, always_right)), spec, GenerationOptions(),
                            tmp_path / "t.jsonl")


# ------------------------------------------------------------------------------------------- contrastive

WRONG_STEP = "Step 1: {a} + {b} = {bad}\nThe answer is {bad}."


def contrastive_answers(problem: Problem, request: Request) -> str:
    a, b = problem.question.split()[2], problem.question.split()[6]
    if "Rewrite the solution" in request.messages[-1][1]:
        if request.sample_index == 1000:  # a wrong answer, but every step checks out: no located error
            return f"Step 1: {a} + {b} = {int(a) + int(b)}\nThe answer is {int(a) + int(b) + 1}."
        return WRONG_STEP.format(a=a, b=b, bad=int(a) + int(b) + 2)
    if request.sample_index == 0:
        return f"Step 1: {a} + {b} = {int(a) + int(b) - 1}\nThe answer is {int(a) + int(b) - 1}."
    if request.sample_index == 1:
        return "I am not sure."
    return solution(problem, problem.answer)


def test_contrastive_pairs_a_correct_trace_with_mined_and_rewritten_negatives(tmp_path):
    ps = problems(2)
    backend = TableBackend(ps, contrastive_answers)
    out = tmp_path / "t.jsonl"
    generate_traces(ps, client_for(backend), "contrastive", GenerationOptions(samples=3), out)
    rows = lines(out)
    for p in ps:
        group = {r["sample_index"]: r for r in rows if r["problem_id"] == p.id}
        # sample 1 has no answer: not a usable negative; rewrite 1000 has no located error: rejected.
        assert sorted(group) == [0, 2, 1001]
        assert {r["metadata"]["pair_id"] for r in group.values()} == {f"{p.id}:contrastive"}
        assert group[2]["metadata"]["role"] == "chosen" and group[2]["correct"]
        assert group[0]["metadata"]["role"] == "rejected" and group[0]["metadata"]["origin"] == "sample"
        assert group[1001]["metadata"]["role"] == "rejected" and group[1001]["metadata"]["origin"] == "rewrite"
        assert group[1001]["hinted"] and group[1001]["metadata"]["rewrite_of"] == 2
        for k in (0, 1001):
            assert group[k]["correct"] is False and group[k]["metadata"]["first_wrong_step"] == 1
        assert all(r["metadata"]["group_size"] == 3 for r in group.values())
    assert len(backend.calls) == 2 * 5  # per problem: 3 candidates and 2 rewrites

    # A rerun takes what is in the file; only what was never written (no cache here) is asked again.
    again = TableBackend(ps, contrastive_answers)
    rerun = generate_traces(ps, client_for(again), "contrastive", GenerationOptions(samples=3), out)
    assert rerun.traces_written == 0 and rerun.reused == 2 * 3
    assert sorted(again.calls) == sorted((p.id, k) for p in ps for k in (1, 1000))


def test_contrastive_mines_candidates_from_an_existing_trace_file(tmp_path):
    ps = problems(2)
    cot = tmp_path / "cot.jsonl"
    generate_traces(ps, client_for(TableBackend(ps, contrastive_answers)), "cot", GenerationOptions(samples=3), cot)
    backend = TableBackend(ps, contrastive_answers)
    out = tmp_path / "pairs.jsonl"
    generate_traces(ps, client_for(backend), "contrastive", GenerationOptions(mine_from=cot, rewrite_attempts=0), out)
    assert backend.calls == []  # candidates come from the file, and no rewrite was asked for
    rows = lines(out)
    assert {(r["problem_id"], r["metadata"]["role"]) for r in rows} == {(p.id, role) for p in ps
                                                                         for role in ("chosen", "rejected")}
    assert all(r["metadata"]["origin"] == "mined" and r["metadata"]["mined_from"]["strategy"] == "cot" for r in rows)


def test_contrastive_without_a_correct_candidate_writes_nothing(tmp_path):
    ps = problems(1)
    backend = TableBackend(ps, lambda p, r: solution(p, 0))
    summary = generate_traces(ps, client_for(backend), "contrastive", GenerationOptions(samples=2),
                              tmp_path / "t.jsonl")
    assert summary.traces_written == 0 and len(backend.calls) == 2  # no chosen: no rewrite is asked for


# ------------------------------------------------------------------------------------------------ sharding

def test_shards_partition_the_problems_by_id_whatever_their_order(tmp_path):
    ps = [Problem(id=f"q{i}", question=f"question {i}?", answer="1") for i in range(200)]
    shards = [{p.id for p in select_shard(ps, Shard(i, 4))} for i in range(4)]
    assert set().union(*shards) == {p.id for p in ps} and sum(map(len, shards)) == 200
    assert all(20 < len(s) < 80 for s in shards)  # a hash, not all in one shard
    assert {p.id for p in select_shard(reversed(ps), Shard(1, 4))} == shards[1]


def test_a_shard_run_generates_only_its_share(tmp_path):
    ps = problems(8)
    backend = TableBackend(ps, always_right)
    generate_traces(ps, client_for(backend), "cot", GenerationOptions(shard=Shard(0, 2)), tmp_path / "t.jsonl")
    assert {pid for pid, _ in backend.calls} == {p.id for p in select_shard(ps, Shard(0, 2))}


def test_duplicate_problem_ids_are_refused(tmp_path):
    ps = problems(2)
    with pytest.raises(InputError, match="appears twice"):
        generate_traces(ps + ps[:1], client_for(TableBackend(ps, always_right)), "cot", GenerationOptions(),
                        tmp_path / "t.jsonl")


def test_progress_reports_done_total_and_rate(tmp_path):
    ps = problems(3)
    seen = []
    generate_traces(ps, client_for(TableBackend(ps, always_right)), "cot", GenerationOptions(samples=2),
                    tmp_path / "t.jsonl", progress=seen.append)
    assert [p.done for p in seen] == [0, 1, 2, 3] and {p.total for p in seen} == {3}
    assert seen[-1].traces_written == 6 and seen[-1].calls == 6 and seen[-1].rate > 0 and seen[-1].eta_s == 0
