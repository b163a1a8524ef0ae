"""The foundation issue's acceptance lines, run through the real CLI in a subprocess."""

import hashlib
import json
from pathlib import Path

import pytest

CASES = Path(__file__).parent / "data" / "score_cases.jsonl"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_synth_is_reproducible_and_splits_disjoint(cli, tmp_path):
    args = ["data", "synth", "--task", "arithmetic", "--n", "500", "--steps", "1-6", "--seed", "0"]
    r1 = cli(*args, "--split", "train", "-o", "p.jsonl", cwd=tmp_path)
    assert r1.returncode == 0, r1.stderr
    first = sha(tmp_path / "p.jsonl")
    r2 = cli(*args, "--split", "train", "-o", "p2.jsonl", cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    assert sha(tmp_path / "p2.jsonl") == first
    r3 = cli(*args, "--split", "test", "-o", "t.jsonl", cwd=tmp_path)
    assert r3.returncode == 0, r3.stderr
    train, test = read(tmp_path / "p.jsonl"), read(tmp_path / "t.jsonl")
    assert len(train) == 500 and len(test) == 500
    assert {p["question"] for p in train}.isdisjoint({p["question"] for p in test})
    from rdistill.records import Problem

    for rec in train:
        p = Problem.model_validate(rec)
        assert p.answer_type == "numeric" and 1 <= p.difficulty <= 6 and p.solution
    assert {p["difficulty"] for p in train} == {1, 2, 3, 4, 5, 6}


def test_load_gsm8k_from_local_copy(cli, tmp_path, shared_data):
    r = cli("data", "load", "gsm8k", "--split", "test", "--path", str(shared_data / "gsm8k" / "test.jsonl"),
            "-o", "g.jsonl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = read(tmp_path / "g.jsonl")
    assert len(rows) == 1319
    from rdistill.answers import parse_number

    assert all(row["answer_type"] == "numeric" and parse_number(row["answer"]) is not None for row in rows)


def test_score_keeps_fields_and_judges_all_answer_types(cli, tmp_path):
    r = cli("score", str(CASES), "-o", "scored.jsonl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = read(tmp_path / "scored.jsonl")
    cases = read(CASES)
    assert len(rows) == len(cases) >= 60
    types = set()
    for case, row in zip(cases, rows):
        assert {k: row[k] for k in case} == case  # every input field kept as it was
        assert "extracted" in row
        assert row["correct"] == case["expect"], (case["id"], case["prediction"], row["extracted"])
        types.add(case.get("answer_type") or "inferred")
    assert {"numeric", "math", "choice", "boolean", "text", "inferred"} <= types
    n_ok = sum(c["expect"] for c in cases)
    assert f"({n_ok}/{len(cases)}" in r.stdout and "accuracy" in r.stdout


@pytest.mark.parametrize("content, expected", [
    (b'{"prediction": "The answer is 4", "answer": "4"}\n{not json}\n', ":2: invalid JSON"),
    (b'{"prediction": "The answer is 4", "answer": "4"}\n{"answer": "4"}\n', ":2: field 'prediction': missing required field"),
    (b'{"prediction": 4, "answer": "4"}\n', ":1: field 'prediction': expected a string"),
    (b'{"prediction": "x", "answer": "4", "answer_type": "numbr"}\n', ":1: field 'answer_type': must be one of"),
    (b'{"prediction": "x", "answer": "4", "choices": "ABCD"}\n', ":1: field 'choices': expected a list"),
    (b'', "file is empty"),
    (b'\n\n', "file is empty"),
    (b'{"prediction": "The answer is 4", "answer": "4"}\n{"prediction": "caf\xe9", "answer": "4"}\n', ":2: not valid UTF-8"),
    (b'[1, 2]\n', ":1: expected a JSON object"),
])
def test_bad_input_one_line_exit_2_nothing_written(cli, tmp_path, content, expected):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    out = tmp_path / "scored.jsonl"
    r = cli("score", str(bad), "-o", str(out), cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert str(bad) in lines[0] and expected in lines[0], lines[0]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]  # no temp file left either


def test_bad_input_does_not_touch_existing_output(cli, tmp_path):
    out = tmp_path / "scored.jsonl"
    out.write_text("precious\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prediction": "The answer is 4", "answer": "4"}\n{"answer": 1}\n')
    r = cli("score", str(bad), "-o", str(out), cwd=tmp_path)
    assert r.returncode == 2
    assert out.read_text() == "precious\n"


def test_unknown_benchmark_and_task(cli, tmp_path):
    r = cli("data", "load", "gsm8kk", "-o", "x.jsonl", cwd=tmp_path)
    assert r.returncode == 2 and "Did you mean 'gsm8k'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli("data", "synth", "--task", "arithmetik", "--n", "3", "-o", "x.jsonl", cwd=tmp_path)
    assert r.returncode == 2 and "arithmetic" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_missing_input_file(cli, tmp_path):
    r = cli("score", "nope.jsonl", "-o", "s.jsonl", cwd=tmp_path)
    assert r.returncode == 2 and "nope.jsonl: no such file" in r.stderr
