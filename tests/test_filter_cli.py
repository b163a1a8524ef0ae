"""`rdistill filter` run as a user runs it: files in, files and a printed report out."""

from __future__ import annotations

import json
from pathlib import Path

Q = "Tom has 3 boxes with 4 apples in each box. He eats 2 apples. How many apples are left?"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


ROWS = [
    {"question": Q, "answer": "10", "reasoning": "Step 1: 3 * 4 = 12.\nStep 2: 12 - 2 = 10.\nThe answer is 10.",
     "strategy": "cot"},
    {"question": Q, "answer": "10", "reasoning": "Step 1: 3 * 4 = 12.\nStep 2: 12 - 2 = 11.\nStep 3: 11 - 1 = 10.\n"
     "The answer is 10.", "strategy": "cot", "sample_index": 1},
    {"question": Q, "answer": "10", "reasoning": "The answer is 10.", "strategy": "terse"},
    {"question": Q, "answer": "10", "reasoning": "It is 12.\nThe answer is 12.", "strategy": "terse", "sample_index": 1},
    {"question": Q, "answer": "10", "reasoning": "```python\nprint(3 * 4 + 2)\n```\nThe answer is 10.",
     "strategy": "pot"},
]


def test_filter_writes_kept_rejected_and_report_and_prints_the_table(cli, tmp_path):
    write_jsonl(tmp_path / "traces.jsonl", ROWS)
    r = cli("filter", "traces.jsonl", "-o", "clean.jsonl", "--report", "report.json", "--rejected", "rejected.jsonl",
            "--sandbox", "--sandbox-timeout", "10", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    kept, rejected = read_jsonl(tmp_path / "clean.jsonl"), read_jsonl(tmp_path / "rejected.jsonl")
    assert [row["strategy"] for row in kept] == ["cot", "terse"]
    by_reason = {row["metadata"]["filter_reason"]: row for row in rejected}
    assert set(by_reason) == {"wrong_arithmetic", "wrong_answer", "code_mismatch"}
    assert by_reason["wrong_arithmetic"]["metadata"]["filter_details"]["first_wrong_step"] == 2
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["input"] == 5 and report["kept"] == 2
    assert report["kept"] + sum(report["dropped_by_reason"].values()) == report["input"]
    assert report["by_strategy"]["pot"]["dropped_by_reason"] == {"code_mismatch": 1}
    assert report["sandbox_isolation"]
    for text in ("wrong_arithmetic", "per strategy", "vote share", "sandbox isolation", "wrote 2 kept traces"):
        assert text in r.stdout


def test_flags_turn_filters_off(cli, tmp_path):
    write_jsonl(tmp_path / "traces.jsonl", ROWS[:4])
    r = cli("filter", "traces.jsonl", "-o", "clean.jsonl", "--no-require-correct", "--no-check-arithmetic",
            "--min-steps", "1", "--rejected", "rejected.jsonl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # Wrong answer and wrong step both kept; only the answer-only trace (no step at all) is dropped.
    assert len(read_jsonl(tmp_path / "clean.jsonl")) == 3
    assert [row["metadata"]["filter_reason"] for row in read_jsonl(tmp_path / "rejected.jsonl")] == ["too_few_steps"]


def test_bad_settings_and_inputs_are_one_line_errors(cli, tmp_path):
    write_jsonl(tmp_path / "traces.jsonl", ROWS[:1])
    r = cli("filter", "traces.jsonl", "-o", "clean.jsonl", "--min-steps", "5", "--max-steps", "2", cwd=tmp_path)
    assert r.returncode == 2 and "min_steps" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "broken.jsonl").write_text(json.dumps(ROWS[0]) + "\n" + '{"question": "q"}\n')
    r = cli("filter", "broken.jsonl", "-o", "clean.jsonl", cwd=tmp_path)
    assert r.returncode == 2 and "broken.jsonl:2" in r.stderr
    assert not (tmp_path / "clean.jsonl").exists()
