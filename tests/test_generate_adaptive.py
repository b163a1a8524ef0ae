"""Adaptive sampling end to end: the stopping rule's knobs through the generator and the CLI, and the keep rule
through the majority filter. The teacher is a table (as in test_generate_engine.py), so every call is counted."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from rdistill.filter import FilterConfig, filter_traces
from rdistill.generate import GenerationOptions, generate_traces
from rdistill.generate.store import read_traces_tolerant
from rdistill.records import Problem
from rdistill.teachers.base import Completion, Request
from rdistill.teachers.client import TeacherClient

# Per problem, the answer of sample k (a cap of 5 at most). None: the gold answer.
TABLE = {
    "easy": [None] * 5,  # unanimous and right
    "split": ["40", "41", "42", "43", "44"],  # never agrees
    "late": ["40", None, None, "41", None],  # 3 of 5 = 0.6 at the cap: fails a 0.7 vote test
    "close": ["40", None, None, None, None],  # 4 of 5 = 0.8 at the cap
}


class Table:
    provider, model, default_concurrency, local = "table", "t", 4, True

    def __init__(self, problems: list[Problem]):
        self.problems, self.calls = problems, []

    async def complete(self, request: Request) -> Completion:
        problem = next(p for p in self.problems if p.question in request.messages[-1][1])
        self.calls.append((problem.id, request.sample_index))
        answer = TABLE[problem.id][request.sample_index] or problem.answer
        return Completion(text=f"Step 1: 3 + 4 = 7\nThe answer is {answer}.", prompt_tokens=10,
                          completion_tokens=5, finish_reason="stop")

    async def aclose(self) -> None:
        pass


def make_problems() -> list[Problem]:
    return [Problem(id=pid, question=f"Problem {pid}: Tom has 3 pens and buys 4 more. How many?", answer="7",
                    domain="math") for pid in TABLE]


def run(tmp_path, name: str, options: GenerationOptions):
    problems = make_problems()
    table = Table(problems)
    out = tmp_path / f"{name}.jsonl"
    generate_traces(problems, TeacherClient(table), "cot", options, out)
    return Counter(pid for pid, _ in table.calls), read_traces_tolerant(out)


def majority_kept(traces) -> list[tuple[str, int]]:
    kept, _ = filter_traces(traces, FilterConfig(majority=True))
    return sorted((t.problem_id, t.sample_index) for t in kept)


def test_futile_problems_stop_early_and_the_vote_test_drops_what_fails_it(tmp_path):
    options = GenerationOptions(adaptive=True, max_samples=5, stop_futile=True, settle=True)
    calls, traces = run(tmp_path, "a", options)
    # easy: 3 unanimous with 2 left is settled. split: 3 different answers can reach 3 of 5 at best.
    # late: 40, 7, 7 could still reach 4 of 5; after 41, 3 of 5 at best. close: 40, 7, 7, 7 leads by 2 with 1
    # left, and 3/4 >= 0.7.
    assert calls == {"easy": 3, "split": 3, "late": 4, "close": 4}
    meta = {t.problem_id: t.metadata for t in traces}
    assert {pid: (m["adaptive_stop"], m["vote_decided"]) for pid, m in meta.items()} == {
        "easy": ("agreement", True), "split": ("futile", False), "late": ("futile", False),
        "close": ("agreement", True)}
    assert majority_kept(traces) == [("close", 1), ("close", 2), ("close", 3), ("easy", 0), ("easy", 1), ("easy", 2)]


def test_stopping_only_when_futile_keeps_what_fixed_sampling_and_the_same_vote_test_keep(tmp_path):
    exact = GenerationOptions(adaptive=True, max_samples=5, stop_futile=True, vote_confidence=1.0, settle=False)
    calls, traces = run(tmp_path, "exact", exact)
    assert calls == {"easy": 5, "split": 3, "late": 4, "close": 5}
    _, fixed = run(tmp_path, "fixed", GenerationOptions(samples=5))
    passing = {t.problem_id for t in fixed if t.metadata["vote_share"] >= 0.7}
    assert majority_kept(traces) == [k for k in majority_kept(fixed) if k[0] in passing]
    assert {t.problem_id for t in traces if t.metadata["adaptive_stop"] == "cap"} == {"easy", "close"}


def test_an_undecided_vote_at_the_cap_is_dropped_unless_asked_to_keep_it(tmp_path):
    options = dict(adaptive=True, max_samples=5, vote_confidence=1.0, settle=False, stop_futile=False)
    _, dropped = run(tmp_path, "drop", GenerationOptions(**options))
    assert {t.problem_id for t in dropped if t.metadata["adaptive_stop"] == "cap"} == set(TABLE)
    assert {pid for pid, _ in majority_kept(dropped)} == {"easy", "close"}
    _, kept = run(tmp_path, "keep", GenerationOptions(keep_undecided=True, **options))
    assert {pid for pid, _ in majority_kept(kept)} == {"easy", "close", "late", "split"}
    assert all(t.metadata["vote_decided"] is False for t in kept if t.problem_id in ("late", "split"))


def test_more_agreeing_samples_needed_means_more_calls(tmp_path):
    calls, _ = run(tmp_path, "m4", GenerationOptions(adaptive=True, max_samples=5, min_agreeing=4))
    assert calls["easy"] == 4  # 3 unanimous are settled, but the vote test wants 4


UNREACHABLE = "openai:gpt-4o-mini@http://127.0.0.1:9/v1"


@pytest.mark.parametrize("extra, field", [
    (["--vote-confidence", "1.2"], "vote_confidence"),
    (["--min-agreeing", "0"], "min_agreeing"),
    (["--max-samples", "4", "--min-agreeing", "5"], "min_agreeing"),
])
def test_bad_adaptive_flags_are_one_line_naming_the_field(cli, tmp_path, extra, field):
    (tmp_path / "p.jsonl").write_text(json.dumps({"id": "p", "question": "2 + 2?", "answer": "4"}) + "\n")
    proc = cli("generate", "p.jsonl", "-o", "out.jsonl", "--teacher", UNREACHABLE, "--adaptive", *extra,
               cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"field '{field}'" in lines[0]
    assert not (tmp_path / "out.jsonl").exists()


def test_the_adaptive_flags_are_documented(cli):
    proc = cli("generate", "--help", env={"COLUMNS": "300", "TERMINAL_WIDTH": "300"})
    for flag in ("--vote-confidence", "--min-agreeing", "--no-settle", "--stop-futile", "--keep-undecided"):
        assert flag in proc.stdout, flag
