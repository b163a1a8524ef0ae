"""`rdistill report`: Markdown, self-contained HTML and JSON from real evaluation results and a real ledger;
every accuracy carries its interval and n; serving cost per 1K tokens for local and API models."""

from __future__ import annotations

import base64
import json
import re

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from rdistill.errors import InputError  # noqa: E402
from rdistill.evaluate.comparison import ComparisonError, result_set  # noqa: E402
from rdistill.records import EvalResult, Usage  # noqa: E402
from rdistill.report import build_report  # noqa: E402
from rdistill.report.cost import serving_cost  # noqa: E402
from support.eval_runs import make_run_folder  # noqa: E402

# "42.0% [31.5–52.1] n=50", or "– (n=0)" where a model has no problem of that kind.
RATE = re.compile(r"^(\d+\.\d% \[\d+\.\d–\d+\.\d\] n=[1-9]\d*|– \(n=0\))$")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    return make_run_folder(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def report(run_folder, tmp_path_factory):
    return build_report([run_folder], tmp_path_factory.mktemp("out") / "report")


def test_report_finds_results_and_ledger_in_a_run_folder(report):
    assert sorted(p.name for p in report.result_files) == ["baseline.plain.jsonl", "baseline.teacher.jsonl",
                                                           "student.jsonl"]
    assert [p.name for p in report.ledger_files] == ["ledger.json"]
    assert report.markdown.exists() and report.html.exists() and report.json.exists()


def test_every_accuracy_in_the_html_has_its_interval_and_n(report):
    html = report.html.read_text()
    cells = re.findall(r'<td class="accuracy">(.*?)</td>', html)
    assert len(cells) >= 3 + 3  # one headline per result set, plus accuracy by steps
    for cell in cells:
        assert RATE.match(cell), cell
    assert all(RATE.match(c) for c in re.findall(r'<td class="metric">(\d[^<]*%[^<]*)</td>', html))


def test_html_is_self_contained(report):
    html = report.html.read_text()
    assert not re.search(r'(?:src|href)\s*=\s*"(?!data:)', html)  # nothing fetched: no links, no files
    assert "<link" not in html and "<script" not in html
    images = re.findall(r'<img class="plot"[^>]*src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 4  # accuracy, accuracy by steps, quality, serving cost
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for data in images)


def test_markdown_shows_the_same_tables_and_links_existing_plots(report):
    markdown = report.markdown.read_text()
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (report.markdown.parent / link).read_bytes().startswith(PNG_MAGIC)
    assert "baseline (baseline used)" in markdown and "student" in markdown
    assert "Fairness checks passed" in markdown


def test_report_json_records_both_baseline_prompts_and_the_choice(report):
    data = json.loads(report.json.read_text())
    [bench] = data["benches"]
    assert bench["n_problems"] == 6
    [choice] = bench["baselines"].values()
    assert len(choice["candidates"]) == 2 and choice["chosen"] in choice["candidates"]
    roles = sorted(row["role"] for row in bench["rows"])
    assert roles == ["baseline", "baseline", "student"]
    assert sum(row["baseline_used"] for row in bench["rows"]) == 1
    quality = bench["rows"][0]["quality"]
    assert quality["early_answering"]["n"] == 2 and quality["steps"]["n"] == 6


def test_cost_section_has_the_ledger_and_local_serving_cost(report, run_folder):
    data = json.loads(report.json.read_text())
    [ledger_row] = data["cost"]["ledgers"]
    assert ledger_row["model"] == "openai:gpt-4o-mini" and ledger_row["cost_usd"] == pytest.approx(0.0198)
    assert "$0.0198" in report.markdown.read_text()
    for row in data["cost"]["serving"]:
        assert row["kind"] == "local" and row["tokens_per_second"] > 0
        assert row["usd_per_1k_tokens"] == pytest.approx(1.0 / 3600 / row["tokens_per_second"] * 1000)
        assert "$1.00/hour" in row["basis"]


def test_api_serving_cost_uses_the_price_table_and_the_token_mix():
    run = {"prompt_style": "teacher", "decoding": {}, "provider": "openai", "local": False,
           "model_id": "openai:gpt-4o-mini"}
    results = [EvalResult(model="openai:gpt-4o-mini", bench="b", problem_id=f"p{i}", question="q", answer="1",
                          prediction="x", correct=False, usage=Usage(prompt_tokens=300, completion_tokens=100),
                          metadata={"run": run}) for i in range(2)]
    row = serving_cost([result_set(results)])
    # 600 prompt tokens at $0.15/M and 200 generated at $0.60/M, per 1K generated tokens.
    assert row["usd_per_1k_tokens"] == pytest.approx((600 * 0.15 + 200 * 0.60) / 1e6 / 200 * 1000)
    assert row["kind"] == "api" and "3.00 prompt tokens per generated token" in row["basis"]


def test_cli_report(cli, run_folder, tmp_path):
    proc = cli("report", str(run_folder / "results"), "--ledger", str(run_folder / "ledger.json"), "--hourly-usd",
               "2.5", "-o", str(tmp_path / "rep"))
    assert proc.returncode == 0, proc.stderr
    assert "report.html" in proc.stdout
    assert "$2.50 per hour" in (tmp_path / "rep" / "report.md").read_text()


def test_results_on_different_problems_are_refused(run_folder, tmp_path):
    from rdistill.jsonl import load_records, write_records

    student = load_records(run_folder / "results" / "student.jsonl", EvalResult)
    write_records(tmp_path / "short.jsonl", student[:-1])
    with pytest.raises(ComparisonError, match="answered 5 problems"):
        build_report([run_folder / "results" / "baseline.plain.jsonl", tmp_path / "short.jsonl"], tmp_path / "r")
    files = build_report([run_folder / "results" / "baseline.plain.jsonl", tmp_path / "short.jsonl"],
                         tmp_path / "r", allow_mismatch=True)
    assert "only the common problems" in files.markdown.read_text()


def test_report_input_errors_name_the_file(tmp_path):
    bad = tmp_path / "notes.jsonl"
    bad.write_text('{"hello": 1}\n')
    with pytest.raises(InputError, match="not an evaluation result file"):
        build_report([bad], tmp_path / "r")
    with pytest.raises(InputError, match="no evaluation results found"):
        build_report([tmp_path], tmp_path / "r2")


def test_each_student_gets_its_paired_difference_from_the_baseline_used(report):
    data = json.loads(report.json.read_text())
    [bench] = data["benches"]
    used = next(row["label"] for row in bench["rows"] if row["baseline_used"])
    [student] = [row for row in bench["rows"] if row["role"] == "student"]
    [paired] = student["paired"]  # no teacher in this folder: the baseline used only
    assert paired["against"] == used and paired["n"] == 6
    assert all("paired" not in row for row in bench["rows"] if row["role"] != "student")
    markdown = report.markdown.read_text()
    assert "Paired differences on the same problems" in markdown and "McNemar" in markdown


def test_paired_difference_matches_problems_by_id_and_uses_the_headline_verdict():
    from rdistill.evaluate.comparison import paired_difference

    def results(model, verdicts, order):
        run = {"prompt_style": "teacher", "decoding": {}, "role": "student"}
        return result_set([EvalResult(model=model, bench="b", problem_id=f"p{i}", question="q", answer="1",
                                      prediction="x", correct=verdicts[i], metadata={"run": run}) for i in order])

    student = results("s", [True, True, True, False, True], order=[4, 3, 2, 1, 0])
    teacher = results("t", [True, False, False, False, False], order=[0, 1, 2, 3, 4])
    d = paired_difference(student, teacher)
    assert (d["n"], d["only_first"], d["only_second"]) == (5, 3, 0)
    assert d["difference"] == pytest.approx(0.6) and d["against"] == "t [teacher]"


def _write_set(path, model: str, role: str, right: int, truncated=None, n: int = 50):
    """`n` answers of `model`, the first `right` of them correct; 2 and 3 steps alternate."""
    from rdistill.jsonl import write_records

    run = {"prompt_style": "teacher", "decoding": {"temperature": 0.0, "max_tokens": 192, "samples": 1},
           "role": role, "local": True, "provider": "hf", "model_id": model}
    write_records(path, [EvalResult(model=model, bench="b", problem_id=f"p{i}", question=f"q{i}", answer="5",
                                    prediction="The answer is 5." if i < right else "The answer is 4.",
                                    extracted="5" if i < right else "4", correct=i < right, difficulty=2 + i % 2,
                                    truncated=truncated(i) if truncated else None, metadata={"run": run})
                         for i in range(n)])
    return path


def test_accuracy_tables_show_wilson_intervals_even_at_0_and_n_of_n(tmp_path):
    from rdistill.report.layout import rate_text
    from rdistill.stats import wilson_interval

    files = build_report([_write_set(tmp_path / "none.jsonl", "none-right", "baseline", 0),
                          _write_set(tmp_path / "all.jsonl", "all-right", "student", 50)], tmp_path / "r")
    markdown, html = files.markdown.read_text(), files.html.read_text()
    for right in (0, 50):
        lo, hi = wilson_interval(right, 50)
        assert hi - lo > 0.05
        headline = rate_text({"value": right / 50, "ci": [lo, hi], "n": 50})  # "0.0% [0.0–7.1] n=50"
        by_steps = rate_text({"value": right / 50, "ci": list(wilson_interval(right // 2, 25)), "n": 25})
        for text in (headline, by_steps):
            assert text in markdown and f'<td class="accuracy">{text}</td>' in html
    assert "[0.0–0.0]" not in markdown and "[100.0–100.0]" not in markdown
    [bench] = json.loads(files.json.read_text())["benches"]
    assert {row["model"]: row["accuracy"]["ci"] for row in bench["rows"]} == {
        "none-right": list(wilson_interval(0, 50)), "all-right": list(wilson_interval(50, 50))}


def _accuracy_table(text: str) -> list[dict]:
    """The rows of the main accuracy table of a Markdown report, as {header: cell}."""
    lines = text.split("### Accuracy\n", 1)[1].strip().split("\n\n", 1)[0].splitlines()
    headers = [h.strip() for h in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return [dict(zip(headers, row)) for row in rows]


def test_the_accuracy_table_shows_the_answers_cut_off_at_max_tokens(tmp_path):
    files = build_report([_write_set(tmp_path / "t.jsonl", "rambler", "teacher", 40, truncated=lambda i: i % 10 == 9),
                          _write_set(tmp_path / "s.jsonl", "terse", "student", 45, truncated=lambda i: False)],
                         tmp_path / "r")
    rows = {row["model"]: row for row in _accuracy_table(files.markdown.read_text())}
    assert rows["rambler"]["cut off at max_tokens"] == "5/50" and rows["terse"]["cut off at max_tokens"] == "0/50"
    html = files.html.read_text()
    assert "<th>cut off at max_tokens</th>" in html and '<td class="text">5/50</td>' in html
    [bench] = json.loads(files.json.read_text())["benches"]
    assert {row["model"]: row["truncated"]["cut_off"] for row in bench["rows"]} == {"rambler": 5, "terse": 0}


def test_old_result_files_without_the_cut_off_field_show_it_as_unknown(tmp_path):
    old = _write_set(tmp_path / "old.jsonl", "old-model", "teacher", 30)
    lines = [json.loads(line) for line in old.read_text().splitlines()]
    old.write_text("".join(json.dumps({k: v for k, v in line.items() if k != "truncated"}) + "\n" for line in lines))
    files = build_report([old, _write_set(tmp_path / "new.jsonl", "new-model", "student", 35,
                                          truncated=lambda i: i < 3)], tmp_path / "r")
    rows = {row["model"]: row for row in _accuracy_table(files.markdown.read_text())}
    assert rows["old-model"]["cut off at max_tokens"] == "–" and rows["new-model"]["cut off at max_tokens"] == "3/50"


def test_a_real_evaluation_records_its_cut_off_answers_in_the_report(report):
    # the tiny random models of the run folder ramble: with max_tokens 10, their answers end at the limit
    [bench] = json.loads(report.json.read_text())["benches"]
    for row in bench["rows"]:
        assert row["truncated"]["known"] == row["truncated"]["answers"] == 6
    cells = [row["cut off at max_tokens"] for row in _accuracy_table(report.markdown.read_text())]
    assert len(cells) == 3 and all(re.fullmatch(r"[0-6]/6", cell) for cell in cells)
