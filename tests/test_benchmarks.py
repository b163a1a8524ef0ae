"""Benchmark loaders, offline: the upstream copies under the repo's sibling `shared/data/` folder.

The hub path is exercised by pointing `datasets.load_dataset` at local files, so the conversion that
hub rows go through is the one tested here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rdistill.data.benchmarks import BENCHMARKS, list_benchmarks, load_benchmark
from rdistill.data.benchmarks import arc_challenge, commonsenseqa, gsm8k
from rdistill.data.benchmarks._fields import RowError, number_text
from rdistill.errors import InputError, UnknownNameError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"offline benchmark copies not found at {DATA} (the repo's sibling shared/data folder)")
    return DATA


def by_id(problems):
    return {p.id: p for p in problems}


# ---------------------------------------------------------------- registry


def test_every_registered_benchmark_has_a_loader_module():
    assert list_benchmarks() == sorted(BENCHMARKS)
    assert set(BENCHMARKS) == {"gsm8k", "math500", "arc_challenge", "strategyqa", "svamp", "multiarith",
                               "commonsenseqa"}
    import importlib
    for module_path in BENCHMARKS.values():
        module = importlib.import_module(module_path)
        assert callable(module.load) and callable(module.row_to_problem)


def test_unknown_benchmark_suggests_the_closest_name():
    with pytest.raises(UnknownNameError) as err:
        load_benchmark("gsm8kk")
    assert "Did you mean 'gsm8k'" in str(err.value)
    assert err.value.kind == "benchmark"


def test_unknown_split_suggests_the_closest_split(data):
    with pytest.raises(UnknownNameError) as err:
        load_benchmark("gsm8k", split="tset", path=data / "gsm8k")
    assert "Did you mean 'test'" in str(err.value)


def test_names_are_matched_case_and_dash_insensitively(data):
    problems = load_benchmark("ARC-Challenge", path=data / "arc_challenge", limit=2)
    assert [p.source for p in problems] == ["arc_challenge", "arc_challenge"]


# ---------------------------------------------------------------- record counts (from each SOURCE.md)


@pytest.mark.parametrize("name,split,count", [
    ("gsm8k", "test", 1319),
    ("gsm8k", "train", 7473),
    ("math500", "test", 500),
    ("arc_challenge", "test", 1172),
    ("strategyqa", "test", 229),
    ("strategyqa", "train", 2061),
    ("svamp", "test", 1000),
    ("multiarith", "test", 600),
    ("commonsenseqa", "test", 1221),
])
def test_each_benchmark_loads_the_record_count_its_source_gives(data, name, split, count):
    problems = load_benchmark(name, split=split, path=data / name)
    assert len(problems) == count
    assert len({p.id for p in problems}) == count, "ids must be unique"
    assert {p.source for p in problems} == {name}
    assert all(p.answer_type is not None and p.answer for p in problems)


def test_limit_keeps_the_first_problems_in_upstream_order(data):
    first = load_benchmark("gsm8k", path=data / "gsm8k", limit=3)
    assert [p.id for p in first] == ["gsm8k-test-0001", "gsm8k-test-0002", "gsm8k-test-0003"]
    assert load_benchmark("gsm8k", path=data / "gsm8k", limit=0) == []
    with pytest.raises(InputError, match="limit"):
        load_benchmark("gsm8k", path=data / "gsm8k", limit=-1)


# ---------------------------------------------------------------- gold normalisation, hand-checked


def test_gsm8k_gold_is_the_final_number_without_commas(data):
    problems = load_benchmark("gsm8k", path=data / "gsm8k")
    assert all(p.answer_type == "numeric" for p in problems)
    for p in problems:
        float(p.answer)  # raises if any gold is not a plain number
        assert "," not in p.answer
    first = problems[0]
    assert first.id == "gsm8k-test-0001" and first.split == "test"
    assert first.answer == "18"
    assert first.question.startswith("Janet’s ducks lay 16 eggs per day.")
    assert first.solution.startswith("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.")
    assert "####" not in first.solution
    assert problems[146].answer == "2125"  # line 147 ends "#### 2,125"
    assert problems[489].answer == "-10"   # line 490: a negative answer
    assert problems[1113].answer == "-3"


def test_math500_keeps_latex_answer_level_and_subject(data):
    problems = by_id(load_benchmark("math500", path=data / "math500"))
    p = problems["math500-test-precalculus-807"]
    assert p.answer == r"\left( 3, \frac{\pi}{2} \right)"
    assert p.answer_type == "math"
    assert p.difficulty == 2
    assert p.metadata == {"subject": "Precalculus", "level": 2, "unique_id": "test/precalculus/807.json"}
    assert p.solution.endswith(r"$\boxed{\left( 3, \frac{\pi}{2} \right)}.$")
    q = problems["math500-test-intermediate_algebra-1197"]
    assert (q.answer, q.difficulty, q.metadata["subject"]) == (r"\frac{3}{56}", 5, "Intermediate Algebra")


def test_math500_falls_back_to_the_last_boxed_answer():
    from rdistill.data.benchmarks import math500

    row = {"problem": "What is 1/2 + 1/3?", "solution": r"First \boxed{x}. So $\boxed{\frac{5}{6}}$.",
           "level": "Level 3", "subject": "Algebra"}
    p = math500.row_to_problem(row, 4, "test")
    assert (p.answer, p.difficulty, p.id) == (r"\frac{5}{6}", 3, "math500-test-0005")


def test_arc_gold_is_a_letter_and_the_question_shows_lettered_options(data):
    problems = by_id(load_benchmark("arc_challenge", path=data / "arc_challenge"))
    p = problems["arc_challenge-Mercury_7175875"]
    assert p.answer == "C" and p.answer_type == "choice"
    assert p.choices == ["Planetary density will decrease.", "Planetary years will become longer.",
                         "Planetary days will become shorter.", "Planetary gravity will become stronger."]
    assert p.question == (
        "An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely "
        "effect of this increase in rotation?\nAnswer Choices: (A) Planetary density will decrease. "
        "(B) Planetary years will become longer. (C) Planetary days will become shorter. "
        "(D) Planetary gravity will become stronger.")
    last = problems["arc_challenge-MEA_2013_8_15"]  # the file's last record, key "A"
    assert (last.answer, last.choices[0]) == ("A", "the floor")
    regents = problems["arc_challenge-NYSEDREGENTS_2008_8_34"]  # numeric label "2" -> second option -> B
    assert regents.answer == "B"
    assert regents.choices[1] == "Kinetic energy increases and potential energy decreases."
    assert regents.metadata["upstream_label"] == "2"


def test_arc_answers_agree_with_the_official_keys_everywhere(data):
    keys = [json.loads(line) for line in
            (data / "arc_challenge" / "ai2_answer_keys" / "question-answers.jsonl").read_text().splitlines()]
    problems = load_benchmark("arc_challenge", path=data / "arc_challenge")
    assert [p.id for p in problems] == [f"arc_challenge-{k['id']}" for k in keys]
    for p, key in zip(problems, keys):
        label = key["answerKey"]
        position = int(label) - 1 if label.isdigit() else "ABCDE".index(label)
        assert p.answer == "ABCDE"[position], p.id
        assert len(p.choices) in (3, 4, 5)


def test_arc_complete_copy_matches_ai2_original_format_where_both_exist(data):
    complete = by_id(load_benchmark("arc_challenge", path=data / "arc_challenge"))
    original = load_benchmark(
        "arc_challenge", path=data / "arc_challenge" / "original_format_partial" / "ARC-Challenge-Test.jsonl")
    assert len(original) == 1150
    for p in original:
        assert p.model_dump() == complete[p.id].model_dump()


def test_arc_key_file_out_of_order_is_caught(data, tmp_path):
    shutil.copytree(data / "arc_challenge" / "llm-adapters", tmp_path / "llm-adapters")
    (tmp_path / "ai2_answer_keys").mkdir()
    lines = (data / "arc_challenge" / "ai2_answer_keys" / "question-answers.jsonl").read_text().splitlines()
    lines[0], lines[1] = lines[1], lines[0]  # keys C and B swap places
    (tmp_path / "ai2_answer_keys" / "question-answers.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        load_benchmark("arc_challenge", path=tmp_path)
    assert err.value.path == str(tmp_path / "llm-adapters" / "test.json")
    assert err.value.field == "answer"
    assert "record [0]" in str(err.value) and "not in this file's order" in str(err.value)


def test_arc_bad_key_is_located_in_the_key_file(data, tmp_path):
    shutil.copytree(data / "arc_challenge" / "llm-adapters", tmp_path / "llm-adapters")
    (tmp_path / "ai2_answer_keys").mkdir()
    lines = (data / "arc_challenge" / "ai2_answer_keys" / "question-answers.jsonl").read_text().splitlines()
    lines[4] = json.dumps({"id": "MCAS_2006_9_44", "answerKey": "?"})
    keys = tmp_path / "ai2_answer_keys" / "question-answers.jsonl"
    keys.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        load_benchmark("arc_challenge", path=tmp_path)
    assert (err.value.path, err.value.line, err.value.field) == (str(keys), 5, "answerKey")


def test_arc_key_file_of_another_length_is_rejected(data, tmp_path):
    shutil.copytree(data / "arc_challenge" / "llm-adapters", tmp_path / "llm-adapters")
    (tmp_path / "ai2_answer_keys").mkdir()
    lines = (data / "arc_challenge" / "ai2_answer_keys" / "question-answers.jsonl").read_text().splitlines()
    (tmp_path / "ai2_answer_keys" / "question-answers.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputError, match="1171 answer keys but .* 1172 questions"):
        load_benchmark("arc_challenge", path=tmp_path)


def test_strategyqa_booleans_become_yes_no(data):
    problems = load_benchmark("strategyqa", path=data / "strategyqa")
    first = problems[0]
    assert first.id == "strategyqa-e0044a7b4d146d611e73"
    assert (first.answer, first.answer_type) == ("no", "boolean")
    assert first.question == "Will the Albany in Georgia reach a hundred thousand occupants before the one in New York?"
    p = by_id(problems)["strategyqa-c69397b4341b65ed080f"]
    assert p.answer == "yes"
    assert p.solution.startswith("The primary language spoken in Saint Vincent and the Grenadines is Vincentian Creole.")
    assert sorted({q.answer for q in problems}) == ["no", "yes"]
    assert sum(q.answer == "yes" for q in problems) == 107  # SOURCE.md: 107 true / 122 false


def test_svamp_joins_body_and_question_and_drops_float_zero(data):
    problems = by_id(load_benchmark("svamp", path=data / "svamp"))
    p = problems["svamp-chal-1"]
    assert p.question == ("Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack "
                          "How much do you have to pay to buy each pack?")
    assert (p.answer, p.answer_type) == ("51", "numeric")  # upstream 51.0
    assert problems["svamp-chal-3"].answer == "17"
    assert problems["svamp-chal-1000"].question.endswith("How far did the frog jump?")
    assert problems["svamp-chal-1000"].answer == "11"


def test_multiarith_takes_the_first_solution_as_a_number(data):
    problems = load_benchmark("multiarith", path=data / "multiarith")
    first, last = problems[0], problems[-1]
    assert first.id == "multiarith-000" and first.answer == "39" and first.answer_type == "numeric"
    assert first.question.startswith("For Halloween Debby and her sister") and first.question.endswith("left?")
    assert last.id == "multiarith-599" and last.answer == "2"
    assert last.metadata["equations"] == ["X=((41.0-37.0)/2.0)"]


def test_commonsenseqa_test_reads_the_labelled_validation_split(data):
    problems = load_benchmark("commonsenseqa", path=data / "commonsenseqa")
    assert {p.split for p in problems} == {"validation"}
    assert all(len(p.choices) == 5 for p in problems)
    # Upstream labels are A-E in order, so every gold letter must equal the file's answerKey (E included).
    rows = [json.loads(line) for line in (data / "commonsenseqa" / "dev_rand_split.jsonl").read_text().splitlines()]
    assert [p.answer for p in problems] == [row["answerKey"] for row in rows]
    assert sum(p.answer == "E" for p in problems) == 235
    first, last = problems[0], problems[-1]
    assert first.answer == "A" and first.choices[0] == "bank"
    assert first.question.endswith("\nAnswer Choices: (A) bank (B) library (C) department store (D) mall (E) new york")
    assert last.id == "commonsenseqa-5af7c7860e3be61d4cfd814cc109f9d9"
    assert (last.answer, last.choices[2]) == ("C", "computer hard drive")


# ---------------------------------------------------------------- the Hugging Face path


def _json_dataset(datasets, files, cache_dir):
    return datasets.load_dataset("json", data_files=str(files), split="train", cache_dir=str(cache_dir))


def test_gsm8k_hub_rows_convert_like_local_rows(data, tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = _json_dataset(datasets, data / "gsm8k" / "test.jsonl", tmp_path / "cache")
    from_hub_rows = [gsm8k.row_to_problem(row, i, "test") for i, row in enumerate(rows)]
    assert from_hub_rows == load_benchmark("gsm8k", path=data / "gsm8k")


def _fake_hub(monkeypatch, tmp_path, expected_id, expected_config, files_by_split):
    """Route `datasets.load_dataset(hub id, ...)` to local JSON files; record what was asked for."""
    datasets = pytest.importorskip("datasets")
    real_load = datasets.load_dataset
    calls = []

    def fake_load(path, name=None, *, split):
        calls.append((path, name, split))
        assert (path, name) == (expected_id, expected_config)
        return _json_dataset(datasets, files_by_split[split], tmp_path / "cache")

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **kw: fake_load(*a, **kw) if a[0] != "json"
                        else real_load(*a, **kw))
    return calls


@pytest.mark.parametrize("split", ["test", "train"])
def test_gsm8k_without_path_reads_the_hub_and_matches_local_files(data, tmp_path, monkeypatch, split):
    calls = _fake_hub(monkeypatch, tmp_path, "openai/gsm8k", "main",
                      {"train": data / "gsm8k" / "train.jsonl", "test": data / "gsm8k" / "test.jsonl"})
    hub = load_benchmark("gsm8k", split=split)
    assert calls == [("openai/gsm8k", "main", split)]
    assert hub == load_benchmark("gsm8k", split=split, path=data / "gsm8k")


def test_math500_without_path_reads_the_hub(data, tmp_path, monkeypatch):
    calls = _fake_hub(monkeypatch, tmp_path, "HuggingFaceH4/MATH-500", None, {"test": data / "math500" / "test.jsonl"})
    assert load_benchmark("math500", limit=5) == load_benchmark("math500", path=data / "math500", limit=5)
    assert calls == [("HuggingFaceH4/MATH-500", None, "test")]


def test_svamp_hub_joins_both_chilled_splits(data, tmp_path, monkeypatch):
    rows = json.loads((data / "svamp" / "SVAMP.json").read_text())
    for split, part in (("train", rows[:700]), ("test", rows[700:])):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    calls = _fake_hub(monkeypatch, tmp_path, "ChilleD/SVAMP", None,
                      {"train": tmp_path / "train.jsonl", "test": tmp_path / "test.jsonl"})
    assert load_benchmark("svamp") == load_benchmark("svamp", path=data / "svamp")
    assert [c[2] for c in calls] == ["train", "test"]


def test_hub_shaped_choice_rows_convert_like_the_local_formats(data):
    # Row shapes as the hub serves them (allenai/ai2_arc, tau/commonsense_qa): flat question, choices dict.
    arc_row = {"id": "Mercury_7175875",
               "question": "An astronomer observes that a planet rotates faster after a meteorite impact. "
                           "Which is the most likely effect of this increase in rotation?",
               "choices": {"text": ["Planetary density will decrease.", "Planetary years will become longer.",
                                    "Planetary days will become shorter.", "Planetary gravity will become stronger."],
                           "label": ["A", "B", "C", "D"]},
               "answerKey": "C"}
    local_arc = load_benchmark("arc_challenge", path=data / "arc_challenge", limit=1)[0]
    assert arc_challenge.row_to_problem(arc_row, 0, "test") == local_arc
    csqa_row = {"id": "a7ab086045575bb497933726e4e6ad28", "question": "What do people aim to do at work?",
                "question_concept": "people",
                "choices": {"label": ["A", "B", "C", "D", "E"],
                            "text": ["complete job", "learn from each other", "kill animals", "wear hats",
                                     "talk to each other"]},
                "answerKey": "A"}
    local_csqa = load_benchmark("commonsenseqa", path=data / "commonsenseqa", limit=2)[1]
    assert commonsenseqa.row_to_problem(csqa_row, 1, "validation") == local_csqa


def test_unreachable_hub_says_to_pass_a_local_path(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(InputError, match="pass path=") as err:
        load_benchmark("strategyqa")
    assert err.value.path.startswith("hf://datasets/ChilleD/StrategyQA")


# ---------------------------------------------------------------- bad local files


def test_invalid_json_line_is_located(data, tmp_path):
    lines = (data / "gsm8k" / "test.jsonl").read_text().splitlines()[:5]
    lines[2] = lines[2][:40]  # a truncated record on line 3
    bad = tmp_path / "test.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        load_benchmark("gsm8k", path=tmp_path)
    assert (err.value.path, err.value.line) == (str(bad), 3)
    assert "invalid JSON" in err.value.message


def test_gsm8k_answer_without_final_line_names_line_and_field(tmp_path):
    bad = tmp_path / "test.jsonl"
    bad.write_text(json.dumps({"question": "1+1?", "answer": "#### 2"}) + "\n"
                   + json.dumps({"question": "2+2?", "answer": "It is four."}) + "\n")
    with pytest.raises(InputError) as err:
        load_benchmark("gsm8k", path=bad)
    assert (err.value.path, err.value.line, err.value.field) == (str(bad), 2, "answer")
    assert "####" in err.value.message


def test_gsm8k_non_numeric_final_answer_is_rejected(tmp_path):
    bad = tmp_path / "test.jsonl"
    bad.write_text(json.dumps({"question": "1+1?", "answer": "so\n#### two"}) + "\n")
    with pytest.raises(InputError, match="not a number") as err:
        load_benchmark("gsm8k", path=bad)
    assert (err.value.line, err.value.field) == (1, "answer")


def test_json_array_record_missing_a_field_names_record_index_and_field(data, tmp_path):
    rows = json.loads((data / "svamp" / "SVAMP.json").read_text())[:3]
    del rows[1]["Answer"]
    bad = tmp_path / "SVAMP.json"
    bad.write_text(json.dumps(rows))
    with pytest.raises(InputError) as err:
        load_benchmark("svamp", path=tmp_path)
    assert (err.value.path, err.value.field) == (str(bad), "Answer")
    assert "record [1]" in str(err.value)


def test_choice_row_with_a_key_outside_its_labels_is_rejected(data, tmp_path):
    lines = (data / "commonsenseqa" / "dev_rand_split.jsonl").read_text().splitlines()[:2]
    row = json.loads(lines[1])
    row["answerKey"] = "F"
    bad = tmp_path / "dev_rand_split.jsonl"
    bad.write_text(lines[0] + "\n" + json.dumps(row) + "\n")
    with pytest.raises(InputError) as err:
        load_benchmark("commonsenseqa", split="validation", path=bad)
    assert (err.value.line, err.value.field) == (2, "answerKey")


def test_directory_without_the_split_file_lists_what_it_expected(tmp_path):
    with pytest.raises(InputError, match="train.jsonl") as err:
        load_benchmark("gsm8k", split="train", path=tmp_path)
    assert err.value.path == str(tmp_path)


def test_missing_path_is_reported(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_benchmark("math500", path=tmp_path / "nowhere")


# ---------------------------------------------------------------- number normalisation


@pytest.mark.parametrize("raw,expected", [
    ("1,450,000", "1450000"), (" 18 ", "18"), ("-48", "-48"), (5.0, "5"), (39, "39"), (0.5, "0.5"),
    ("3.50", "3.5"), ("2.0", "2"),
])
def test_number_text_gives_one_spelling_per_number(raw, expected):
    assert number_text(raw, "answer") == expected


@pytest.mark.parametrize("raw", ["two", "nan", "inf", "", True, None, "1/2"])
def test_number_text_rejects_non_numbers(raw):
    with pytest.raises(RowError):
        number_text(raw, "answer")
