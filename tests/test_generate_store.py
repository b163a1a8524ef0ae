"""Reading trace files left by killed runs, and merging shards' traces and caches (API and CLI)."""

from __future__ import annotations

import json
import logging

import pytest

from rdistill.errors import InputError
from rdistill.generate.merge import merge_caches, merge_traces
from rdistill.generate.store import read_traces_tolerant
from rdistill.records import Trace
from rdistill.teachers.base import Completion
from rdistill.teachers.cache import ResponseCache


def trace(pid: str, k: int, reasoning: str = "Step 1: 2 + 3 = 5\nThe answer is 5.", cached: bool = False) -> dict:
    return Trace(problem_id=pid, question=f"What is {pid}?", answer="5", reasoning=reasoning, strategy="cot",
                 sample_index=k, usage={"cached": cached, "seconds": 0.0 if cached else 1.5}).to_json_dict()


def write_jsonl(path, rows, tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail, encoding="utf-8")


def test_a_torn_last_line_is_skipped_and_a_complete_one_without_newline_kept(tmp_path, caplog):
    path = tmp_path / "t.jsonl"
    write_jsonl(path, [trace("a", 0)], tail=json.dumps(trace("a", 1))[:40])
    with caplog.at_level(logging.WARNING):
        assert [t.key for t in read_traces_tolerant(path)] == [("a", "cot", 0)]
    assert "torn last line" in caplog.text
    write_jsonl(path, [trace("a", 0)], tail=json.dumps(trace("a", 1)))
    assert [t.sample_index for t in read_traces_tolerant(path)] == [0, 1]
    assert read_traces_tolerant(tmp_path / "missing.jsonl") == []


def test_a_bad_line_before_the_end_is_damage_and_names_its_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(trace("a", 0)) + "\n{not json\n" + json.dumps(trace("a", 1)) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="invalid JSON") as info:
        read_traces_tolerant(path)
    assert info.value.line == 2
    path.write_text(json.dumps({"question": "q", "answer": "1"}) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_traces_tolerant(path)
    assert info.value.field == "reasoning" and info.value.line == 1


def test_merge_dedupes_by_key_and_keeps_the_first_of_conflicting_copies(tmp_path, caplog):
    s1, s2, out = tmp_path / "s1.jsonl", tmp_path / "s2.jsonl", tmp_path / "out.jsonl"
    write_jsonl(s1, [trace("a", 0), trace("a", 1), trace("b", 0, reasoning="first version")])
    # a/0 again but a cache hit (only usage differs): a duplicate. b/0 with other text: a conflict.
    write_jsonl(s2, [trace("a", 0, cached=True), trace("b", 0, reasoning="second version"), trace("c", 0)],
                tail='{"problem_id": "c", "quest')
    with caplog.at_level(logging.WARNING):
        summary = merge_traces(out, [s1, s2])
    assert (summary.read, summary.written, summary.duplicates) == (6, 4, 1)
    assert summary.conflicts == [("b", "cot", 0)] and "conflicting copies" in caplog.text
    merged = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["problem_id"], r["sample_index"]) for r in merged] == [("a", 0), ("a", 1), ("b", 0), ("c", 0)]
    assert merged[2]["reasoning"] == "first version" and merged[0]["usage"]["cached"] is False


def test_merge_can_write_over_one_of_its_inputs(tmp_path):
    s1, s2 = tmp_path / "s1.jsonl", tmp_path / "s2.jsonl"
    write_jsonl(s1, [trace("a", 0)])
    write_jsonl(s2, [trace("b", 0)])
    assert merge_traces(s1, [s1, s2]).written == 2
    assert len(s1.read_text().splitlines()) == 2


def fill_cache(path, keys: list[str]) -> None:
    cache = ResponseCache(path)
    for key in keys:
        cache.put(key, "table", "t", Completion(text=f"answer {key}"))
    cache.close()


def test_caches_merge_into_one(tmp_path):
    fill_cache(tmp_path / "c1.sqlite", ["k1", "k2"])
    fill_cache(tmp_path / "c2.sqlite", ["k2", "k3"])
    assert merge_caches(tmp_path / "all.sqlite", [tmp_path / "c1.sqlite", tmp_path / "c2.sqlite"]) == 3
    merged = ResponseCache(tmp_path / "all.sqlite")
    assert len(merged) == 3 and merged.get("k3").text == "answer k3" and merged.get("k3").cached
    with pytest.raises(InputError, match="no such cache"):
        merge_caches(tmp_path / "all.sqlite", [tmp_path / "nope.sqlite"])
    with pytest.raises(InputError, match="not a response cache"):
        (tmp_path / "x.jsonl").write_text("{}\n")
        merge_caches(tmp_path / "all.sqlite", [tmp_path / "x.jsonl"])


def test_cli_merge_takes_shards_and_caches_as_written_in_the_docs(cli, tmp_path):
    write_jsonl(tmp_path / "s1.jsonl", [trace("a", 0), trace("b", 0, reasoning="one")])
    write_jsonl(tmp_path / "s2.jsonl", [trace("b", 0, reasoning="two"), trace("c", 0)])
    fill_cache(tmp_path / "c1.sqlite", ["k1"])
    fill_cache(tmp_path / "c2.sqlite", ["k2"])
    proc = cli("merge", "out.jsonl", "s1.jsonl", "s2.jsonl", "--cache-into", "all.sqlite",
               "--caches", "c1.sqlite", "c2.sqlite", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "into 3 in out.jsonl" in proc.stdout and "2 new entries" in proc.stdout
    assert "1 keys had conflicting copies" in proc.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3
    assert len(ResponseCache(tmp_path / "all.sqlite")) == 2


def test_cli_merge_refuses_a_cache_without_cache_into(cli, tmp_path):
    write_jsonl(tmp_path / "s1.jsonl", [trace("a", 0)])
    fill_cache(tmp_path / "c1.sqlite", ["k1"])
    proc = cli("merge", "out.jsonl", "s1.jsonl", "c1.sqlite", cwd=tmp_path)
    assert proc.returncode == 2 and "--cache-into" in proc.stderr and not (tmp_path / "out.jsonl").exists()
