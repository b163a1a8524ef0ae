"""What `rdistill run` and `rdistill quickstart` show on the terminal: a line per stage, a progress bar while a stage
runs, and the headline table at the end. Used by the CLI only (the library itself only logs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from rdistill.pipeline.runner import RunObserver, RunResult, StageSpec


class ConsoleObserver(RunObserver):
    def __init__(self, out: Console, err: Console, *, bars: bool = True):
        self.out, self.err, self.bars = out, err, bars
        self._progress: Progress | None = None
        self._tasks: dict[str, Any] = {}

    # -- stages --------------------------------------------------------------------------------------------------

    def run_started(self, run_dir: Path, stages: list[StageSpec]) -> None:
        self.err.print(f"run folder {run_dir}: {len(stages)} stages", markup=False)

    def stage_skipped(self, stage: StageSpec, index: int, total: int, reason: str) -> None:
        self.err.print(f"[{index}/{total}] {stage.name}: skipped ({reason})", style="dim", markup=False)

    def stage_started(self, stage: StageSpec, index: int, total: int, reason: str) -> None:
        self.err.print(f"[{index}/{total}] {stage.name}: {reason}", markup=False)
        self._start_bar(stage.name)

    def stage_finished(self, stage: StageSpec, entry: dict[str, Any]) -> None:
        self._stop_bar()
        self.err.print(f"    done in {_duration(entry.get('seconds') or 0.0)}{_summary(stage, entry)}",
                       markup=False, soft_wrap=True)

    def stage_failed(self, stage: StageSpec, error: BaseException) -> None:
        self._stop_bar()

    def note(self, text: str) -> None:
        (self._progress.console if self._progress else self.err).print(f"    {text}", markup=False, soft_wrap=True)

    # -- progress inside a stage ---------------------------------------------------------------------------------

    def generation(self, p) -> None:
        eta = f"ETA {_duration(p.eta_s)}" if p.eta_s is not None else ""
        self._update("problems", p.done, p.total,
                     f"{p.traces_written} traces, {p.calls} calls ({p.cache_hits} cached), ${p.cost_usd:.4f} {eta}")

    def training(self, p) -> None:
        stage = f"steps (stage {p.stage}/{p.stages})" if p.stages > 1 else "steps"
        loss = f"loss {p.loss:.4f}" if p.loss is not None else ""
        speed = f"{p.tokens_per_s:,.0f} tok/s" if p.tokens_per_s else ""
        self._update(stage, p.stage_step, p.stage_steps, f"{loss} {speed}")

    def evaluation(self, phase: str, done: int, total: int) -> None:
        self._update(phase, done, total, "")

    # -- bars ----------------------------------------------------------------------------------------------------

    def _start_bar(self, name: str) -> None:
        if not self.bars:
            return
        self._progress = Progress(SpinnerColumn(), TextColumn("    {task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                                  console=self.err, transient=True)
        self._progress.start()
        self._tasks = {"": self._progress.add_task(name, total=None, detail="")}

    def _update(self, phase: str, done: int, total: int | None, detail: str) -> None:
        if self._progress is None:
            return
        if phase not in self._tasks:
            if "" in self._tasks:  # the stage's placeholder spinner gives way to the first real bar
                self._progress.remove_task(self._tasks.pop(""))
            self._tasks[phase] = self._progress.add_task(phase, total=total, detail="")
        self._progress.update(self._tasks[phase], completed=done, total=total, detail=detail)

    def _stop_bar(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress = None
        self._tasks = {}


def _summary(stage: StageSpec, entry: dict[str, Any]) -> str:
    d = entry.get("detail") or {}
    u = entry.get("usage") or {}
    if stage.kind == "data":
        sets = ", ".join(f"{k} {v['problems']}" for k, v in (d.get("eval") or {}).items())
        return f": {d.get('train')} training problems" + (f"; eval sets {sets}" if sets else "")
    if stage.kind == "generate":
        return (f": {d.get('traces_written')} new traces ({d.get('correct_written')} correct) for "
                f"{d.get('problems')} problems; {u.get('calls', 0)} calls, {u.get('cache_hits', 0)} cached, "
                f"${u.get('cost_usd', 0.0):.4f}")
    if stage.kind == "filter":
        return f": kept {d.get('kept')} of {d.get('input')} traces"
    if stage.kind == "train":
        loss = d.get("final_loss")
        return f": {d.get('steps')} steps, final loss {loss:.4f}" if loss is not None else f": {d.get('steps')} steps"
    if stage.kind == "star":
        if d.get("stopped"):
            return f": converged, iteration {d.get('student_of_iteration')}'s student kept"
        return (f": solved {d.get('solved')} of {d.get('problems')} training problems, rationalized "
                f"{d.get('rationales_correct')} of {d.get('wrong')} wrong ones, trained on {d.get('kept')}")
    if stage.kind == "targeted":
        what = (f"{d.get('failed')} of {d.get('pool')} pool problems failed" if "failed" in d
                else f"{d.get('drawn')} random pool problems")
        return f": {what}, sent to the teacher; {d.get('new_traces_kept')} new traces kept, trained on {d.get('trained_on')}"
    if stage.kind == "select":
        rates = "; ".join(f"{style} prompt {_rate(acc)}" for style, acc in d.items()
                          if isinstance(acc, dict) and acc.get("value") is not None)
        return f": {d.get('chosen')} prompt chosen on {d.get('problems')} validation problems ({rates})"
    if stage.kind == "eval":
        parts = []
        for style in ("teacher", "plain", "trained", *sorted(k for k in d if k.startswith("trained:"))):
            acc = d.get(style)
            if acc and acc.get("value") is not None:
                parts.append(f"{style} prompt {_rate(acc)}")
        return ": " + "; ".join(parts) if parts else ""
    return ""


def print_headline(out: Console, result: RunResult) -> None:
    if result.report_dir is not None:
        out.print(f"report: {result.report_html} (Markdown: {result.report_markdown})", markup=False, soft_wrap=True)
    out.print(f"manifest: {result.manifest_path}", markup=False, soft_wrap=True)
    headline = result.headline
    if not headline or not headline.get("rows"):
        return
    table = Table(title="accuracy (95% interval, n problems)", title_justify="left")
    table.add_column("model")
    table.add_column("role")
    for name in headline["sets"]:
        table.add_column(name, justify="right")
    marked = False
    for row in headline["rows"]:
        used = set(row.get("baseline_used_on") or [])
        cells = [_rate(row["accuracy"].get(name)) + (" *" if name in used else "") for name in headline["sets"]]
        marked = marked or bool(used)
        table.add_row(*(Text(cell) for cell in (row.get("name") or row["label"], row["role"], *cells)))
    if marked:
        table.caption = "* the baseline: the better of the untrained student's two prompts on that set"
        table.caption_justify = "left"
    _print_wide(out, table)
    for line in paired_lines(headline):
        out.print(line, markup=False, soft_wrap=True)


def paired_lines(headline: dict) -> list[str]:
    """"cot_sft vs teacher: heldout +14 points [+6, +22] p=0.0013; ..." for every student and reference."""
    lines = []
    for row in headline["rows"]:
        by_reference: dict[str, list[str]] = {}
        for bench in headline["sets"]:
            for d in row.get("paired", {}).get(bench, []):
                if d.get("difference") is None:
                    continue
                lo, hi = d["ci"]
                by_reference.setdefault(d["against"], []).append(
                    f"{bench} {100 * d['difference']:+.0f} points [{100 * lo:+.0f}, {100 * hi:+.0f}] "
                    f"p={d['p_value']:.2g}")
        lines += [f"{row.get('name') or row['label']} vs {reference}: " + "; ".join(parts)
                  for reference, parts in by_reference.items()]
    if lines:
        lines.insert(0, "paired on the same problems (student minus reference, 95% interval, exact McNemar p):")
    return lines


def _print_wide(out: Console, table: Table) -> None:
    from rich.measure import Measurement

    if out.is_terminal:
        out.print(table)
        return
    # Into a file or a pipe: as wide as the table needs, not the 80 columns rich assumes, so no cell wraps.
    width = Measurement.get(out, out.options.update_width(1000), table).maximum
    before = out.width
    out.width = max(before, width)
    try:
        out.print(table)
    finally:
        out.width = before


def _rate(acc: dict | None) -> str:
    if not acc or acc.get("value") is None:
        return "-"
    lo, hi = acc["ci"]
    return f"{acc['value']:.0%} [{lo:.0%}–{hi:.0%}] n={acc['n']}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
