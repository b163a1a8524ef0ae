"""The README's measured numbers come from committed bench results, and still say what those files say.

Rule of the project: a number in the README, a recipe comment or a note comes from a committed file under
bench/results/ that the measuring script wrote, and the text names the file. This test checks

- every `bench/results/FILE` and `bench/SCRIPT.py` that README.md, recipes/README.md or a recipe's comments mention
  exists in the repository;
- for the figures listed in FIGURES below, that the README still prints the value the results file holds (formatted
  the way the README writes it). When a bench is rerun and its file changes, the README must change with it; when a
  figure is added to the README, add a row here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MENTION = re.compile(r"bench/(?:results/[A-Za-z0-9_.\-]*[A-Za-z0-9_\-]|[A-Za-z0-9_]+\.py)")
MINUS = "\u2212"  # the README writes negative numbers with a real minus sign


def documents() -> dict[str, str]:
    """README.md, recipes/README.md, and the comments of every recipe."""
    texts = {"README.md": (ROOT / "README.md").read_text(encoding="utf-8"),
             "recipes/README.md": (ROOT / "recipes" / "README.md").read_text(encoding="utf-8")}
    for recipe in sorted((ROOT / "recipes").glob("*.yaml")):
        comments = [line.split("#", 1)[1] for line in recipe.read_text(encoding="utf-8").splitlines() if "#" in line]
        texts[f"recipes/{recipe.name}"] = "\n".join(comments)
    return texts


def mentions() -> list[tuple[str, str]]:
    return [(doc, m) for doc, text in documents().items() for m in MENTION.findall(text)]


def test_documents_mention_bench_results():
    # Guards the test itself: a changed pattern or a moved README must not make the next test pass on nothing.
    assert any(m.startswith("bench/results/") for _, m in mentions())


@pytest.mark.parametrize(("doc", "path"), sorted(set(mentions())))
def test_every_mentioned_bench_file_exists(doc, path):
    assert (ROOT / path).is_file(), f"{doc} mentions {path}, which is not in the repository"


# -- the figures ---------------------------------------------------------------------------------------------------

def signed(x: float) -> str:
    return f"{x:+.0f}".replace("-", MINUS)


def accuracy(entry: dict) -> str:
    """{"value": 0.19, "ci": [0.12, 0.27]} -> "19% [12–27]"."""
    lo, hi = entry["ci"]
    return f"{entry['value'] * 100:.0f}% [{lo * 100:.0f}–{hi * 100:.0f}]"


def p_value(p: float) -> str:
    """0.0003 -> "p<0.001", 0.0013 -> "p=0.001", 0.453 -> "p=0.45", 1.0 -> "p=1.0"."""
    if p < 0.001:
        return "p<0.001"
    text = f"{p:.{3 if p < 0.01 else 2}f}".rstrip("0")
    return "p=" + (text + "0" if text.endswith(".") else text)


def paired(entry: dict, negate: bool = False) -> str:
    """{"difference": -0.15, "ci": [-0.23, -0.07], "p_value": 0.0003} -> "−15 [−23, −7], p<0.001" (in points);
    `negate` reads a difference the other way round (B - A from an A - B entry)."""
    sign = -1 if negate else 1
    lo, hi = sorted(sign * x * 100 for x in entry["ci"])
    return f"{signed(sign * entry['difference'] * 100)} [{signed(lo)}, {signed(hi)}], {p_value(entry['p_value'])}"


def whole(x) -> str:
    return str(x)


def row_cells(by_set: dict, bold: bool = False) -> str:
    cells = [accuracy(by_set[name]) for name in ("heldout", "transfer", "harder")]
    return " | ".join(f"**{c}**" if bold else c for c in cells)


# (what the README says, with {} where the figure goes; results file; key path in it; how the README writes it)
FIGURES = [
    ("on the same 187\nverified traces", "train_methods.json", "kept_traces", whole),
    ("(teacher {}, untrained", "train_methods.json", "results.teacher", accuracy),
    ("untrained student {}, the better of its\ntwo prompts", "train_methods.json", "results.baseline[plain]", accuracy),
    ("| `answer_only` | {} |", "train_methods.json", "results.answer_only", accuracy),
    ("| `answer_only` | 5% [1–10] | {} |", "train_methods.json", "paired.cot_sft.answer_only",
     lambda e: paired(e, negate=True)),
    ("| `cot_sft` | **{}** |", "train_methods.json", "results.cot_sft", accuracy),
    ("(as the paper) | {} |", "train_methods.json", "results.step_by_step", accuracy),
    ("(as the paper) | 4% [1–8] | {} |", "train_methods.json", "paired.step_by_step.cot_sft", paired),
    ("(`--student-task rationale`) | {} |", "train_methods.json", "results.step_by_step[rationale]", accuracy),
    ("(`--student-task rationale`) | 16% [9–23] | {} |", "train_methods.json",
     "paired.step_by_step[rationale].cot_sft", paired),
    ("3 disjoint stages by steps | {} |", "train_methods.json", "results.curriculum", accuracy),
    ("3 disjoint stages by steps | 4% [1–8] | {} |", "train_methods.json", "paired.curriculum.cot_sft", paired),
    ("--stage-epochs 1,1,2` | {} |", "train_methods.json", "results.curriculum_accumulate", accuracy),
    ("--stage-epochs 1,1,2` | 15% [9–22] | {} |", "train_methods.json", "paired.curriculum_accumulate.cot_sft",
     paired),
    ("gains nothing over answer-only ({})", "train_methods.json", "paired.step_by_step.answer_only", paired),
    # accuracy on the 25 one-step problems (by_steps[0] is steps 1)
    ("that student gets {} of the 25\none-step", "train_methods.json", "results.curriculum.by_steps.0", accuracy),
    ("one-step problems right (`cot_sft`: {})", "train_methods.json", "results.cot_sft.by_steps.0", accuracy),
    ("(`--accumulate`) brings it back to {} (accuracy by steps", "train_methods.json",
     "results.curriculum_accumulate.by_steps.0", accuracy),
    ("killed with SIGKILL in {} stages", "pipeline_resume-quickstart.json", "kills", len),
    # the quickstart headline table: each row's three sets, as the run's headline holds them
    ("| teacher, Qwen2.5-Coder-1.5B | {} |", "pipeline_resume-quickstart.json", "headline.rows.0.accuracy",
     lambda acc: row_cells(acc)),
    ("| untrained student, plain prompt | {} |", "pipeline_resume-quickstart.json", "headline.rows.1.accuracy",
     lambda acc: row_cells(acc)),
    ("| untrained student, teacher's prompt | {} |", "pipeline_resume-quickstart.json", "headline.rows.2.accuracy",
     lambda acc: row_cells(acc)),
    ("| answer-only student | {} |", "pipeline_resume-quickstart.json", "headline.rows.3.accuracy",
     lambda acc: row_cells(acc)),
    ("Qwen2.5-Coder-0.5B + LoRA | {} |", "pipeline_resume-quickstart.json", "headline.rows.4.accuracy",
     lambda acc: row_cells(acc, bold=True)),
    ("({} s of\nwall time, all attempts)", "pipeline_resume-quickstart.json", "wall_seconds", lambda x: f"{x:.0f}"),
    ("(that file's run, {} s,", "pipeline_stages-quickstart.json", "wall_seconds", lambda x: f"{x:.0f}"),
    ("left running, after {} of the kills", "pipeline_resume-quickstart.json", "kills",
     lambda kills: str(sum(1 for k in kills if k["processes_left_after_kill"]))),
    # the fresh-venv run of today's recipe (headline rows: teacher, chosen baseline, answer_only, cot_sft)
    ("({} s of wall time; the developers'", "pipeline_stages-quickstart-fresh-venv.json", "wall_seconds",
     lambda x: f"{x:.0f}"),
    ("mean {}, max", "pipeline_stages-quickstart-fresh-venv.json", "load_average.during_mean_1min", whole),
    ("| teacher, Qwen2.5-Coder-1.5B (this run) | {} |", "pipeline_stages-quickstart-fresh-venv.json",
     "headline.rows.0.accuracy", lambda acc: row_cells(acc)),
    ("| untrained student, plain prompt (this run) | {} |", "pipeline_stages-quickstart-fresh-venv.json",
     "headline.rows.1.accuracy", lambda acc: row_cells(acc)),
    ("| answer-only student (this run) | {} |", "pipeline_stages-quickstart-fresh-venv.json",
     "headline.rows.2.accuracy", lambda acc: row_cells(acc)),
    ("Qwen2.5-Coder-0.5B + LoRA (this run) | {} |", "pipeline_stages-quickstart-fresh-venv.json",
     "headline.rows.3.accuracy", lambda acc: row_cells(acc, bold=True)),
]


def value_at(data, path: str):
    """data["a"]["b"][0]... for the dotted `path` "a.b.0" (keys may hold brackets: results.baseline[plain])."""
    for key in path.split("."):
        data = data[int(key)] if isinstance(data, list) else data[key]
    return data


def expected(phrase: str, results_file: str, path: str, fmt) -> str:
    data = json.loads((RESULTS / results_file).read_text(encoding="utf-8"))
    return phrase.format(fmt(value_at(data, path)))


def missing(readme: str, figures=FIGURES) -> list[str]:
    """The README phrases, with the results files' values filled in, that the README does not contain."""
    flat = " ".join(readme.split())  # line breaks in the README are not part of a phrase
    return [f"{file}:{path} -> {text!r}" for phrase, file, path, fmt in figures
            if " ".join((text := expected(phrase, file, path, fmt)).split()) not in flat]


def test_readme_figures_match_their_results_files():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not missing(readme), "README figures that differ from their bench/results file:\n" + "\n".join(
        missing(readme))


def test_a_changed_figure_is_caught():
    # The check can fail: a README whose cot_sft accuracy no longer matches train_methods.json is reported.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    cot = expected("{}", "train_methods.json", "results.cot_sft", accuracy)
    assert cot in readme
    wrong = missing(readme.replace(f"**{cot}**", "**20% [12–27]**"))
    assert any("results.cot_sft ->" in line for line in wrong)


def test_formats():
    assert accuracy({"value": 0.19, "ci": [0.12, 0.27]}) == "19% [12–27]"
    assert paired({"difference": 0.14, "ci": [0.06, 0.22], "p_value": 0.0013}, negate=True) == \
        f"{MINUS}14 [{MINUS}22, {MINUS}6], p=0.001"
    assert paired({"difference": -0.03, "ci": [-0.08, 0.02], "p_value": 0.453}) == f"{MINUS}3 [{MINUS}8, +2], p=0.45"
    assert p_value(1.0) == "p=1.0" and p_value(0.0003) == "p<0.001" and p_value(0.34375) == "p=0.34"
