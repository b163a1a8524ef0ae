"""The report's economics: the run's account from its manifest, cost per (correct) answer, and the break-even, checked
on hand-computed cases; an API model the price table does not hold is a clear error; the shipped prices carry a date.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from rdistill.errors import InputError
from rdistill.report.economics import answer_cost, break_even_queries, reference_per_query, run_account
from rdistill.teachers.prices import price_table


def test_break_even_is_the_making_cost_over_the_saving_per_query():
    # $3 to make; the student costs $0.0001 a query, the teacher $0.0004: it pays for itself after 3 / 0.0003.
    assert break_even_queries(3.0, 0.0001, 0.0004) == pytest.approx(10_000)
    assert break_even_queries(3.0, 0.0004, 0.0004) is None  # no saving per query: never
    assert break_even_queries(3.0, 0.0005, 0.0004) is None


def test_cost_per_answer_and_per_correct_answer():
    # $0.002 per 1K generated tokens, 5000 tokens over 100 answers (50 each), half of them right.
    cost = answer_cost(0.002, 5000, 100, 0.5)
    assert cost["usd_per_answer"] == pytest.approx(0.0001) and cost["usd_per_correct"] == pytest.approx(0.0002)
    assert answer_cost(0.002, 5000, 100, 0.0)["usd_per_correct"] is None  # no correct answer: no price for one
    assert answer_cost(None, 5000, 100, 0.5) == {"usd_per_answer": None, "usd_per_correct": None}


def test_the_account_splits_making_the_students_from_measuring_them():
    manifest = {"stages": {name: {"status": "done", "seconds": seconds} for name, seconds in [
        ("data", 10), ("generate", 3600), ("filter", 1), ("train:cot_sft", 1800), ("eval:teacher:heldout", 720),
        ("report", 5)]} | {"eval:cot_sft:heldout": {"status": "running", "seconds": 99}}}
    account = run_account(manifest, hourly_usd=2.0, teacher_usd=1.5)
    assert account["distillation_seconds"] == 5411 and account["measurement_seconds"] == 725  # running: not counted
    assert account["distillation_usd"] == pytest.approx(5411 / 3600 * 2 + 1.5)
    assert account["measurement_usd"] == pytest.approx(725 / 3600 * 2)
    assert account["by_kind"]["eval"]["seconds"] == 720 and [s["stage"] for s in account["stages"]][-1] == "report"


def test_an_api_model_the_price_table_does_not_hold_is_a_clear_error():
    table = price_table()
    # gpt-4o-mini at its list price: 0.15 and 0.60 USD per 1M tokens; 200 prompt and 100 completion tokens a query.
    assert reference_per_query("openai:gpt-4o-mini", table, 200, 100) == pytest.approx((200 * 0.15 + 100 * 0.60) / 1e6)
    with pytest.raises(InputError, match=r"no price for 'openai:gpt-9' in the price table .*add it to a price file") \
            as excinfo:
        reference_per_query("openai:gpt-9", table, 200, 100)
    assert excinfo.value.field == "compare_with"


def test_the_shipped_prices_are_dated_and_a_users_file_says_its_own_date(tmp_path):
    shipped = price_table()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", shipped.as_of) and shipped.as_of in shipped.source
    mine = tmp_path / "prices.json"
    mine.write_text(json.dumps({"as_of": "2027-01-15", "usd_per_million_tokens": {
        "openai:my-model": {"input": 1.0, "output": 2.0}}}))
    table = price_table(mine)
    assert table.as_of == "2027-01-15" and "prices.json (as of 2027-01-15)" in table.source
    assert table.prices["openai:my-model"].output_per_m == 2.0 and "openai:gpt-4o" in table.prices
    plain = tmp_path / "plain.yaml"
    plain.write_text("openai:my-model: {input: 1, output: 2}\n")
    assert "undated" in price_table(plain).source


@pytest.mark.slow
def test_a_report_on_a_run_folder_with_its_manifest_has_the_account_and_the_break_even(tmp_path_factory):
    pytest.importorskip("torch")
    from rdistill.report import build_report
    from support.eval_runs import make_run_folder

    run = make_run_folder(tmp_path_factory.mktemp("economics"))
    results = run / "results"
    teacher = json.loads((results / "baseline.plain.jsonl").read_text().splitlines()[0])["model"]
    student = json.loads((results / "student.jsonl").read_text().splitlines()[0])["model"]
    name = student.rstrip("/").rsplit("/", 1)[-1]
    stages = {"data": 2, "generate": 600, "filter": 1, f"train:{name}": 1200, "train:other": 900, "report": 3}
    (run / "manifest.json").write_text(json.dumps({"stages": {k: {"status": "done", "seconds": v}
                                                              for k, v in stages.items()}}))
    files = build_report([run], tmp_path_factory.mktemp("out"), roles={teacher: "teacher"}, hourly_usd=3.6,
                         compare_with=["openai:gpt-4o-mini"])
    e = json.loads(files.json.read_text())["economics"]
    # Making this student: the shared stages and its own training (not the other one's), at $3.60/h, plus the
    # ledger's $0.0198 of teacher calls.
    making = (2 + 600 + 1 + 1200) / 3600 * 3.6 + 0.0198
    rows = {b["against"].split(" ")[0]: b for b in e["break_even"]}
    assert set(rows) == {"teacher", "openai:gpt-4o-mini"}
    for b in rows.values():
        assert b["making_usd"] == pytest.approx(making)
        saving = b["other_usd_per_query"] - b["student_usd_per_query"]
        assert b["queries"] == (pytest.approx(making / saving) if saving > 0 else None)
    assert e["prices_as_of"] == price_table().as_of
    markdown = files.markdown.read_text()
    assert "## What distilling cost, and what it saves" in markdown and f"as of {e['prices_as_of']}" in markdown
    assert markdown.index("What distilling cost") < markdown.index("## synth:arithmetic")  # the decision first
    assert any(p.name == "break-even-1.png" for p in files.plots)

    with pytest.raises(InputError, match="no price for 'openai:gpt-9'"):
        build_report([run], tmp_path_factory.mktemp("bad"), roles={teacher: "teacher"}, compare_with=["openai:gpt-9"])
    shutil.rmtree(run)



def test_what_did_not_distill_names_sets_where_the_interval_lies_below_zero():
    from rdistill.report.layout import Bullets, limits_blocks

    def pair(against, difference, lo, hi):
        return {"against": against, "difference": difference, "ci": [lo, hi], "n": 50, "p_value": 0.01}

    bench = {"bench": "harder", "rows": [
        {"label": "T", "role": "teacher"}, {"label": "B", "role": "baseline"},
        {"label": "S", "role": "student", "paired": [pair("T", -0.2, -0.3, -0.1), pair("B", 0.02, -0.05, 0.1)]}]}
    blocks = limits_blocks([bench])
    bullets = [b for b in blocks if isinstance(b, Bullets)]
    assert len(bullets) == 1 and bullets[0].items[0].startswith("S on harder: -20.0 [-30.0, -10.0] n=50 points "
                                                                "against T")
    assert any("On no set did a student lose ground" in getattr(b, "text", "") for b in blocks)
    assert limits_blocks([{"bench": "x", "rows": [{"label": "T", "role": "teacher"}]}]) == []  # no student
