"""Fair comparisons: every model on the same problems with the same decoding, against the better baseline.

A result file holds one model's answers on one benchmark under one prompt (`ResultSet`). `compare` groups the
sets by benchmark and checks, per benchmark, that all of them answered exactly the same problem ids and used the
same decoding (temperature, top_p, max_tokens, samples, seed); a mismatch is an error unless allowed, and then
only the common problems are compared and the report says so.

The untrained baseline is evaluated twice, with the plain prompt and with the teacher's system prompt
(`evaluate_baseline`); the better of the two is the baseline the students are compared against, and both are
kept and shown.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from rdistill.errors import InputError, RdistillError
from rdistill.evaluate.accuracy import accuracy_summary
from rdistill.evaluate.options import EvalOptions
from rdistill.evaluate.runner import DEFAULT_BATCH_SIZE, EvalRun, close_client, evaluate, open_model
from rdistill.records import EvalResult

log = logging.getLogger(__name__)


class ComparisonError(RdistillError):
    """The result sets cannot be compared fairly (different problems or decoding)."""


@dataclass
class ResultSet:
    results: list[EvalResult]
    model: str
    bench: str
    prompt_style: str
    decoding: dict
    run: dict
    role: str | None = None
    path: Path | None = None
    _accuracy: dict | None = field(default=None, repr=False)
    name: str | None = None  # what a report calls the model ("cot_sft student, Qwen2.5-Coder-0.5B + LoRA")

    @property
    def label(self) -> str:
        return f"{self.name or self.model} [{self.prompt_style}]"

    @property
    def problem_ids(self) -> set[str]:
        return {r.problem_id for r in self.results}

    @property
    def accuracy(self) -> dict:
        if self._accuracy is None:
            self._accuracy = accuracy_summary(self.results)
        return self._accuracy

    def restricted_to(self, ids: set[str]) -> "ResultSet":
        kept = [r for r in self.results if r.problem_id in ids]
        return ResultSet(kept, self.model, self.bench, self.prompt_style, self.decoding, self.run, self.role, self.path,
                         name=self.name)


def paired_difference(first: ResultSet, second: ResultSet) -> dict:
    """`first` minus `second` on the problems both answered, from each problem's headline verdict (the greedy
    answer, or maj@k with several samples): difference, 95% interval, n and exact McNemar p (rdistill.stats)."""
    from rdistill.evaluate.accuracy import outcomes
    from rdistill.stats import paired_difference as paired

    a = {o.problem_id: o.headline_correct for o in outcomes(first.results)}
    b = {o.problem_id: o.headline_correct for o in outcomes(second.results)}
    ids = sorted(a.keys() & b.keys())
    return paired([a[i] for i in ids], [b[i] for i in ids]) | {"against": second.label}


def result_set(results: list[EvalResult], *, path: Path | None = None, role: str | None = None) -> ResultSet:
    """One model, one benchmark, one prompt: anything else in a single file is refused."""
    where = str(path) if path else "results"
    if not results:
        raise InputError("no results", path=where)
    runs = [r.metadata.get("run") or {} for r in results]
    for name, values in (("model", {r.model for r in results}), ("bench", {r.bench for r in results}),
                         ("prompt_style", {run.get("prompt_style") for run in runs}),
                         ("student_task", {run.get("student_task") for run in runs})):
        if len(values) > 1:
            raise InputError(f"mixes several values of {name} ({', '.join(sorted(map(str, values)))}); "
                             "keep one model, benchmark and prompt per file", path=where, field=name)
    first = results[0]
    run = runs[0]
    style = run.get("prompt_style") or "unknown"
    if run.get("student_task"):  # a multi-task student asked through another task is another row of a report
        style = f"{style}:{run['student_task']}"
    return ResultSet(results=results, model=first.model, bench=first.bench, prompt_style=style,
                     decoding=run.get("decoding") or {},
                     run=run, role=role or run.get("role") or infer_role(first.model, run), path=path)


def load_result_set(path: str | Path, role: str | None = None) -> ResultSet:
    from rdistill.jsonl import load_records

    return result_set(load_records(path, EvalResult), path=Path(path), role=role)


def infer_role(model: str, run: dict) -> str | None:
    """A trained student is a model folder; the rest is unknown unless `--role` said so at eval time."""
    prefix, _, rest = model.partition(":")
    folder = rest if prefix in ("hf", "llamaserver") else model
    if Path(folder).expanduser().is_dir():  # a student folder, through transformers or llama-server + its LoRA
        return "student"
    return None


@dataclass
class BenchComparison:
    bench: str
    sets: list[ResultSet]
    problem_ids: set[str]
    issues: list[str]  # fairness problems that were allowed (empty in a fair comparison)
    baselines: dict[str, dict]  # model -> {"chosen": label, "candidates": {label: accuracy}}


def compare(sets: list[ResultSet], *, allow_mismatch: bool = False) -> list[BenchComparison]:
    by_bench: dict[str, list[ResultSet]] = {}
    for s in sets:
        by_bench.setdefault(s.bench, []).append(s)
    return [_compare_bench(bench, group, allow_mismatch) for bench, group in sorted(by_bench.items())]


def _compare_bench(bench: str, sets: list[ResultSet], allow_mismatch: bool) -> BenchComparison:
    issues = problem_id_issues(sets) + decoding_issues(sets)
    common = set.intersection(*(s.problem_ids for s in sets))
    if issues and not allow_mismatch:
        raise ComparisonError(f"{bench}: these results cannot be compared fairly:\n  - " + "\n  - ".join(issues)
                              + "\nRe-run the evaluations with the same problems and decoding, or pass "
                                "--allow-mismatch to compare only the common problems.")
    if issues:
        log.warning("%s: comparing on the %d common problems despite: %s", bench, len(common), "; ".join(issues))
        sets = [s.restricted_to(common) for s in sets]
    return BenchComparison(bench, sets, common, issues, choose_baselines(sets))


def problem_id_issues(sets: list[ResultSet]) -> list[str]:
    reference = sets[0]
    issues = []
    for s in sets[1:]:
        if s.problem_ids != reference.problem_ids:
            only_ref = sorted(reference.problem_ids - s.problem_ids)
            only_this = sorted(s.problem_ids - reference.problem_ids)
            issues.append(f"{s.label} answered {len(s.problem_ids)} problems and {reference.label} "
                          f"{len(reference.problem_ids)}; {len(only_ref)} only in the latter "
                          f"(e.g. {', '.join(only_ref[:3]) or '-'}), {len(only_this)} only in the former "
                          f"(e.g. {', '.join(only_this[:3]) or '-'})")
    return issues


def decoding_issues(sets: list[ResultSet]) -> list[str]:
    reference = sets[0]
    issues = []
    for s in sets[1:]:
        differing = sorted(k for k in set(s.decoding) | set(reference.decoding)
                           if s.decoding.get(k) != reference.decoding.get(k))
        if differing:
            detail = ", ".join(f"{k} {s.decoding.get(k)!r} vs {reference.decoding.get(k)!r}" for k in differing)
            issues.append(f"{s.label} decoded differently from {reference.label}: {detail}")
    return issues


def choose_baselines(sets: list[ResultSet]) -> dict[str, dict]:
    """Per baseline model: the prompt with the higher accuracy (ties: the plain prompt), and every candidate. A
    baseline whose prompt was chosen before, on other problems (its results record `prompt_choice`), keeps that
    choice, and the entry says where it was made (`chosen_on`): choosing on the test set itself flatters it."""
    by_model: dict[str, list[ResultSet]] = {}
    for s in sets:
        if s.role == "baseline":
            by_model.setdefault(s.model, []).append(s)
    chosen = {}
    for model, candidates in by_model.items():
        best = max(candidates, key=lambda s: (s.accuracy["accuracy"]["value"] or 0.0, s.prompt_style == "plain"))
        chosen[model] = {"chosen": best.label,
                         "candidates": {s.label: s.accuracy["accuracy"]["value"] for s in candidates}}
        choice = best.run.get("prompt_choice")
        if len(candidates) == 1 and choice:
            chosen[model]["chosen_on"] = choice
        elif len(candidates) == 1:
            log.info("baseline %s was evaluated with one prompt only (%s); evaluate it with both "
                     "(--prompt-style both) for a fair baseline", model, best.prompt_style)
    return chosen


@dataclass
class BaselineRuns:
    plain: EvalRun
    teacher: EvalRun
    chosen_style: str  # the prompt style whose accuracy is higher (ties: plain)

    @property
    def chosen(self) -> EvalRun:
        return self.plain if self.chosen_style == "plain" else self.teacher


def evaluate_baseline(model: str, problems, *, bench: str, options: EvalOptions | None = None,
                      cache=True, batch_size: int = DEFAULT_BATCH_SIZE, concurrency: int | None = None,
                      **kwargs) -> BaselineRuns:
    """Evaluate an untrained model with the plain prompt and with the teacher's prompt (same decoding, one
    loaded model), and say which is better; both runs are returned so that both are recorded."""
    options = replace(options or EvalOptions(), role="baseline", system_prompt=None)
    client = open_model(model, cache=cache, batch_size=batch_size, concurrency=concurrency)
    try:
        runs = {style: evaluate(model, problems, bench=bench, options=replace(options, prompt_style=style),
                                client=client, **kwargs)
                for style in ("plain", "teacher")}
    finally:
        close_client(client)
    accuracy = {style: run.summary["accuracy"]["accuracy"]["value"] or 0.0 for style, run in runs.items()}
    return BaselineRuns(runs["plain"], runs["teacher"], "plain" if accuracy["plain"] >= accuracy["teacher"] else "teacher")
