"""The `rdistill` command: a thin typer layer over the Python API.

Only this module prints. Every `RdistillError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import click
import typer
from rich.console import Console

from rdistill.errors import RdistillError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Distill reasoning from a teacher model into a small student.")
data_app = typer.Typer(no_args_is_help=True, help="Make and load problems: built-in tasks and benchmarks.")
app.add_typer(data_app, name="data")

out = Console(highlight=False, emoji=False)  # ":star:" in a stage name stays text
err = Console(stderr=True, highlight=False, emoji=False)


@app.callback()
def _root(verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More logging (-v info, -vv debug).")):
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@data_app.command("synth")
def data_synth(
    task: str = typer.Option("arithmetic", help="Built-in task family (arithmetic, last_letters, coin_flip, date_arith, facts)."),
    n: int = typer.Option(..., "--n", min=1, help="Number of problems."),
    steps: str = typer.Option("1-4", help="Number of reasoning steps, a range like 1-6 or one number."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same problems, byte for byte."),
    split: str = typer.Option("train", help="train or test: the two never share a question."),
    output: Path = typer.Option(..., "-o", "--output", help="Output JSONL file."),
):
    """Generate built-in reasoning problems with exact gold answers and gold step-by-step solutions."""
    from rdistill.data.synth import generate, parse_steps_range
    from rdistill.jsonl import write_records

    try:
        step_range = parse_steps_range(steps)
    except ValueError as e:
        raise RdistillError(f"--steps: {e}") from None
    try:
        problems = generate(task, n, seed=seed, split=split, steps=step_range)
    except ValueError as e:
        raise RdistillError(str(e)) from None
    count = write_records(output, problems)
    out.print(f"wrote {count} {task} problems ({split}, steps {step_range[0]}-{step_range[1]}, seed {seed}) to {output}")


@data_app.command("load")
def data_load(
    bench: str = typer.Argument(..., help="Benchmark name: gsm8k, math500, arc_challenge, strategyqa, svamp, multiarith, commonsenseqa."),
    split: str = typer.Option("test", help="Split to load."),
    path: Optional[Path] = typer.Option(None, help="Load from a local file or folder in the upstream format instead of Hugging Face."),
    limit: Optional[int] = typer.Option(None, min=1, help="Keep only the first N problems."),
    output: Path = typer.Option(..., "-o", "--output", help="Output JSONL file."),
):
    """Load a benchmark as problems (from Hugging Face datasets, or --path for local files)."""
    from rdistill.data.benchmarks import load_benchmark
    from rdistill.jsonl import write_records

    problems = load_benchmark(bench, split=split, path=path, limit=limit)
    count = write_records(output, problems)
    out.print(f"wrote {count} {bench} problems ({split}) to {output}")


@app.command("score")
def score(
    predictions: Path = typer.Argument(..., help="JSONL with `prediction`, `answer` and optionally `answer_type`, `choices`."),
    output: Path = typer.Option(..., "-o", "--output", help="Output JSONL: each line plus `extracted` and `correct`."),
):
    """Extract the final answer from each prediction and judge it against the gold answer."""
    from rdistill.scoring import score_file
    from rdistill.stats import wilson_interval

    summary = score_file(predictions, output)
    lo, hi = wilson_interval(summary.correct, summary.total)
    out.print(f"accuracy {summary.accuracy:.1%} ({summary.correct}/{summary.total}, 95% CI {lo:.1%}–{hi:.1%}); "
              f"no answer found in {summary.unanswered}; wrote {output}")


@app.command("models")
def models(as_json: bool = typer.Option(False, "--json", help="Print the catalog as a JSON list.")):
    """List the offline model catalog (real small models shipped as PyPI packages) and their install state."""
    import json

    from rdistill.models.catalog import catalog_status

    rows = catalog_status()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    columns = [(row["name"], "yes" if row["installed"] else "no", row["file"] or row["install_command"],
                f"{row['size_bytes'] / 1e6:.0f} MB") for row in rows]
    table = _models_table(columns) if sys.stdout.isatty() else None
    if table is None:
        # Piped, redirected or a very narrow terminal: whole values, tab-separated, so nothing is cut to fit
        # rich's assumed 80 columns.
        typer.echo("name\tinstalled\tfile / install command\tsize")
        for cells in columns:
            typer.echo("\t".join(cells))
        return
    out.print(table)


def _models_table(columns: list[tuple[str, str, str, str]]):
    """The catalog as a rich table for this terminal, or None where even its narrowest form does not fit.

    Left alone, rich shrinks every column of a narrow terminal and cuts names to "…"; a name is what the user
    types next (offline:NAME), so name, installed and size keep their full width and only the file folds."""
    from rich.table import Column, Table
    from rich.text import Text

    def widest(k: int, header: str) -> int:
        return max([len(header)] + [len(cells[k]) for cells in columns])

    minimums = [widest(0, "name"), widest(1, "installed"), 12, widest(3, "size")]
    if sum(minimums) + 3 * len(minimums) + 1 > out.width:  # each column adds 2 of padding and 1 of border
        return None
    table = Table(Column("name", min_width=minimums[0], no_wrap=True),
                  Column("installed", min_width=minimums[1], no_wrap=True),
                  Column("file / install command", min_width=minimums[2], overflow="fold"),
                  Column("size", min_width=minimums[3], no_wrap=True, justify="right"))
    for cells in columns:
        table.add_row(*map(Text, cells))  # Text, not markup: "rdistill[extra]" must keep its brackets
    return table


@app.command("ask")
def ask(
    teacher: str = typer.Argument(..., help="Model string: openai:MODEL[@URL], anthropic:MODEL, llamacpp:FILE.gguf, hf:ID, offline:NAME."),
    question: str = typer.Argument(..., help="The question to ask."),
    system: Optional[str] = typer.Option(None, help="System prompt."),
    max_tokens: int = typer.Option(512, min=1),
    temperature: float = typer.Option(0.0, min=0.0),
    seed: Optional[int] = typer.Option(0),
    cache: bool = typer.Option(True, help="Use the response cache (--no-cache to always call the model)."),
    budget_usd: Optional[float] = typer.Option(None, help="Refuse calls that could cross this many dollars."),
):
    """Ask one question, print the answer and what it cost: a quick manual check of a teacher."""
    from rdistill.teachers import Request, SamplingParams, make_teacher

    client = make_teacher(teacher, cache=cache, budget_usd=budget_usd)
    params = SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=seed)
    completion = client.complete(Request.chat(question, system=system, params=params))
    out.print(completion.text, markup=False)
    err.print(f"[{client.name}] {completion.prompt_tokens} prompt + {completion.completion_tokens} completion tokens, "
              f"${completion.cost_usd:.6f}, {completion.seconds:.2f}s{' (cached)' if completion.cached else ''}",
              markup=False, soft_wrap=True)


@app.command("generate")
def generate(
    problems: Path = typer.Argument(..., help="Problems JSONL (from `rdistill data synth` / `data load`, or your own)."),
    output: Path = typer.Option(..., "-o", "--output", help="Trace JSONL, appended to; what it already holds is skipped."),
    teacher: str = typer.Option(..., "--teacher", "-t", help="Teacher model string, e.g. offline:qwen2.5-coder-1.5b-instruct or openai:MODEL@http://host:8000/v1 (vLLM)."),
    strategy: str = typer.Option("cot", "--strategy", "-s", help="cot, rationalize, orca, domain:math|code|legal|medical, contrastive."),
    samples: Optional[int] = typer.Option(None, min=1, help="Samples per problem (default 1; orca: one per style; contrastive: 4 candidates)."),
    temperature: Optional[float] = typer.Option(None, min=0.0, help="Default 0 for one sample, 0.7 for several."),
    top_p: float = typer.Option(1.0, min=0.0, max=1.0),
    max_tokens: int = typer.Option(512, min=1),
    seed: Optional[int] = typer.Option(0, help="Sample k uses seed+k: samples differ, reruns repeat."),
    adaptive: bool = typer.Option(False, "--adaptive", help="Sample each problem until its answers agree (see --vote-threshold) or --max-samples."),
    vote_threshold: float = typer.Option(0.7, min=0.0, max=1.0, help="Adaptive: the vote test: the top answer must hold this share of the samples (and --min-agreeing of them). Sampling stops when the test passes and the lead is decisive (--vote-confidence, --settle); a problem whose samples fail it where sampling stops is dropped (see --keep-undecided)."),
    max_samples: int = typer.Option(8, min=1, help="Adaptive: the most samples per problem."),
    adaptive_gold: bool = typer.Option(False, "--adaptive-gold", help="Adaptive: one sample matching the gold answer is enough."),
    vote_confidence: float = typer.Option(0.95, help="Adaptive: stop once the Beta posterior that the top answer beats the runner-up reaches this (0.95: 4 unanimous samples), in [0, 1]; 1 turns this stop off."),
    min_agreeing: int = typer.Option(3, help="Adaptive: the vote test never passes with fewer agreeing samples (>= 1, at most --max-samples)."),
    settle: bool = typer.Option(False, "--settle/--no-settle", help="Adaptive: also stop once the top answer leads by more than the samples left, so the cap's majority is already known (not whether it would pass the vote test there: --no-settle keeps closer to what --samples N plus the vote test keeps)."),
    stop_futile: bool = typer.Option(True, "--stop-futile/--no-stop-futile", help="Adaptive: stop a problem as soon as no further samples could make it pass the vote test by --max-samples: it would be dropped anyway. With --vote-confidence 1 --no-settle this keeps exactly what --samples N plus the same vote test keeps, for fewer calls."),
    keep_undecided: bool = typer.Option(False, "--keep-undecided/--drop-undecided", help="Adaptive: a problem whose samples fail the vote test where sampling stopped has no majority: none of its traces agrees_with_majority, so a majority filter drops them (default), or keep its most frequent answer as the majority."),
    templates: Optional[Path] = typer.Option(None, help="YAML prompt templates merged over the shipped ones."),
    shard: Optional[str] = typer.Option(None, help="I/N: take only shard I (0-based) of N, by a stable hash of problem id."),
    mine_from: Optional[Path] = typer.Option(None, help="Contrastive: take candidates from this trace file instead of sampling."),
    rewrite_attempts: int = typer.Option(2, min=0, help="Contrastive: teacher rewrites tried per problem for a wrong-step negative."),
    logprobs: int = typer.Option(0, "--logprobs", min=0, max=100, help="Store the teacher's token ids and top-K log-probabilities with each trace, for `rdistill train -m kd` (llamaserver: and hf: teachers)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Use only the first N problems."),
    budget_usd: Optional[float] = typer.Option(None, min=0.0, help="Stop before spending more than this; exit code 3 when reached."),
    concurrency: Optional[int] = typer.Option(None, min=1, help="Teacher calls in flight (default: the backend's)."),
    cache: Optional[Path] = typer.Option(None, help="Response cache file (default: $RDISTILL_CACHE/responses.sqlite)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Call the teacher even for requests answered before."),
    ledger: Optional[Path] = typer.Option(None, help="Write the call/token/cost ledger as JSON here."),
    prices: Optional[Path] = typer.Option(None, help="Price table (JSON/YAML) for API teachers."),
    show_progress: bool = typer.Option(True, "--progress/--no-progress", help="Draw a progress bar."),
):
    """Ask a teacher to reason through problems and append its traces to OUTPUT (resumable; rerun to continue).

    Exit codes: 0 done, 1 some samples failed (rerun to retry them), 2 bad input, 3 the budget was reached.
    """
    import itertools

    from rdistill.generate import GenerationOptions, Shard, generate_traces
    from rdistill.generate.runner import prepare_strategy
    from rdistill.jsonl import read_records
    from rdistill.records import Problem
    from rdistill.teachers import make_teacher

    options = GenerationOptions(
        samples=samples, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, adaptive=adaptive,
        vote_threshold=vote_threshold, max_samples=max_samples, adaptive_gold=adaptive_gold,
        vote_confidence=vote_confidence, min_agreeing=min_agreeing, settle=settle, stop_futile=stop_futile,
        keep_undecided=keep_undecided, templates=templates,
        shard=Shard.parse(shard) if shard else None, mine_from=mine_from, rewrite_attempts=rewrite_attempts,
        logprobs=logprobs)
    prepared = prepare_strategy(strategy, options)  # bad templates or options fail here, before a model loads
    problem_list = list(itertools.islice(read_records(problems, Problem), limit))
    client = make_teacher(teacher, cache=False if no_cache else (cache or True), budget_usd=budget_usd,
                          concurrency=concurrency, prices=prices)
    with _generation_progress(show_progress) as on_progress:
        summary = generate_traces(problem_list, client, prepared, options, output, progress=on_progress)
    if ledger:
        client.ledger.save(ledger)
    _print_generation_summary(summary)
    if summary.budget_exceeded:
        err.print(f"stopped: {summary.budget_exceeded}", markup=False, soft_wrap=True)
        err.print(f"{summary.traces_written} traces answered before the stop are in {output}; rerun with a higher "
                  "--budget-usd to continue where it stopped.", markup=False, soft_wrap=True)
        sys.exit(3)
    if summary.failures:
        err.print(f"{summary.failures} samples failed ({summary.first_error}); rerun the same command to retry them.",
                  markup=False, soft_wrap=True)
        sys.exit(1)


def _generation_progress(enabled: bool):
    """A context manager yielding the progress callback: a rich bar with rate, ETA and running cost."""
    import contextlib

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    if not enabled:
        return contextlib.nullcontext(None)

    @contextlib.contextmanager
    def bar():
        columns = [TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TextColumn("problems"),
                   TextColumn("{task.fields[detail]}")]
        with Progress(*columns, console=err, transient=False) as progress:
            task = progress.add_task("generate", total=None, detail="")

            def on_progress(p):
                eta = f"ETA {_duration(p.eta_s)}" if p.eta_s is not None else "ETA ?"
                detail = (f"{p.rate * 60:.1f}/min  {eta}  {p.traces_written} traces  {p.calls} calls "
                          f"({p.cache_hits} cached)  ${p.cost_usd:.4f}")
                progress.update(task, total=p.total, completed=p.done, detail=detail)

            yield on_progress

    return bar()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _print_generation_summary(summary) -> None:
    share = f"{summary.correct_written / summary.traces_written:.0%}" if summary.traces_written else "-"
    out.print(f"{summary.strategy}: wrote {summary.traces_written} traces ({summary.correct_written} correct, {share}) "
              f"for {summary.problems_done} problems to {summary.output}; {summary.already_done} of {summary.problems} "
              f"problems were already done; {summary.reused} samples reused from the file; {summary.seconds:.1f}s",
              markup=False, soft_wrap=True)
    if not summary.ledger["models"]:
        out.print("teacher: no calls and no cache hits", markup=False)
    for name, m in summary.ledger["models"].items():
        cost = f"${m['cost_usd']:.4f}" + ("" if m["priced"] else " (no price known)")
        out.print(f"teacher {name}: {m['calls']} calls, {m['cache_hits']} cache hits, {m['retries']} retries, "
                  f"{m['failures']} failures, {m['prompt_tokens']} prompt + {m['completion_tokens']} completion tokens, "
                  f"{cost}", markup=False, soft_wrap=True)


@app.command("merge")
def merge(
    output: Path = typer.Argument(..., help="Merged trace JSONL (written atomically; may be one of the inputs)."),
    inputs: list[Path] = typer.Argument(..., help="Trace files of shards or runs, in priority order."),
    cache_into: Optional[Path] = typer.Option(None, help="Merge response caches into this cache file."),
    caches: Optional[list[Path]] = typer.Option(None, help="Shard caches to merge into --cache-into (SQLite files among the inputs count too)."),
):
    """Merge trace files (deduplicated by problem, strategy and sample; the first of conflicting copies wins)
    and, with --cache-into, the shards' response caches."""
    from rdistill.generate.merge import is_sqlite_file, merge_caches, merge_traces

    cache_files = list(caches or []) + [p for p in inputs if is_sqlite_file(p)]
    trace_files = [p for p in inputs if not is_sqlite_file(p)]
    if cache_files and cache_into is None:
        raise RdistillError(f"{cache_files[0]} is a response cache: pass --cache-into CACHE to merge caches")
    if not trace_files:
        raise RdistillError("no trace files to merge")
    summary = merge_traces(output, trace_files)
    out.print(f"merged {summary.read} traces from {len(trace_files)} files into {summary.written} in {output} "
              f"({summary.duplicates} duplicates dropped)", markup=False, soft_wrap=True)
    if summary.conflicts:
        err.print(f"warning: {len(summary.conflicts)} keys had conflicting copies; kept the first of each, e.g. "
                  f"{summary.conflicts[0]}", markup=False, soft_wrap=True)
    if cache_into is not None:
        added = merge_caches(cache_into, cache_files)
        out.print(f"merged {len(cache_files)} caches into {cache_into}: {added} new entries", markup=False)


@app.command("filter")
def filter_command(
    traces: Path = typer.Argument(..., help="Traces JSONL (at least `question`, `answer`, `reasoning` per line)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output JSONL: the traces that pass every filter."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the filter report as JSON here."),
    rejected: Optional[Path] = typer.Option(None, "--rejected", help="Write dropped traces here, with "
                                            "`filter_reason` and `filter_details` in their metadata."),
    require_correct: bool = typer.Option(True, "--require-correct/--no-require-correct",
                                         help="Drop wrong answers (against gold; without gold, against the majority)."),
    majority: bool = typer.Option(False, "--majority", help="Judge every trace against its problem's majority "
                                  "vote instead of the gold answer."),
    min_steps: Optional[int] = typer.Option(None, "--min-steps", min=0, help="Drop traces with fewer steps."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=0, help="Drop traces with more steps."),
    max_chars: Optional[int] = typer.Option(None, "--max-chars", min=1, help="Drop reasoning longer than this."),
    check_arithmetic: bool = typer.Option(True, "--check-arithmetic/--no-check-arithmetic",
                                          help="Re-compute every step; drop traces with a wrong one."),
    check_grounded: bool = typer.Option(False, "--check-grounded", help="Drop traces with numbers from nowhere "
                                        "(otherwise they are only flagged)."),
    dedup: bool = typer.Option(False, "--dedup", help="Drop near-duplicate traces of the same problem."),
    dedup_threshold: float = typer.Option(0.9, "--dedup-threshold", min=0.0, max=1.0,
                                          help="Shingle Jaccard similarity at which two traces are duplicates."),
    symbolic: bool = typer.Option(False, "--symbolic", help="Verify math answers symbolically (math-verify)."),
    sandbox: bool = typer.Option(False, "--sandbox", help="Run the ```python blocks of traces in a sandbox; "
                                 "drop traces whose code fails or prints another answer."),
    sandbox_timeout: float = typer.Option(5.0, "--sandbox-timeout", min=0.1, help="Seconds per program."),
    sandbox_memory_mb: int = typer.Option(256, "--sandbox-memory-mb", min=16, help="Memory per program (MiB)."),
    keep_rejected_pairs: bool = typer.Option(False, "--keep-rejected-pairs",
                                             help="Keep the wrong side of contrastive pairs whose correct side is kept "
                                                  "(for -m contrastive / dpo; other methods skip them)."),
):
    """Keep only traces worth training on; report what was dropped and why."""
    from rdistill.filter import FilterConfig, SandboxLimits, filter_file
    from rdistill.filter.report import report_tables

    config = FilterConfig(
        require_correct=require_correct, majority=majority, min_steps=min_steps, max_steps=max_steps,
        max_chars=max_chars, check_arithmetic=check_arithmetic, check_grounded=check_grounded, dedup=dedup,
        dedup_threshold=dedup_threshold, symbolic=symbolic, sandbox=sandbox, keep_rejected_pairs=keep_rejected_pairs,
        sandbox_limits=SandboxLimits(wall_seconds=sandbox_timeout, memory_mb=sandbox_memory_mb))
    result = filter_file(traces, output, config, report_path=report, rejected_path=rejected)
    for table in report_tables(result):
        out.print(table)
    if result.sandbox_isolation is not None:
        out.print("sandbox isolation: " + ", ".join(result.sandbox_isolation), markup=False)
    written = [f"{result.kept} kept traces to {output}"]
    if rejected is not None:
        written.append(f"{result.dropped} rejected to {rejected}")
    if report is not None:
        written.append(f"the report to {report}")
    out.print("wrote " + ", ".join(written), markup=False)


@app.command("train")
def train(
    traces: Path = typer.Argument(..., help="Trace JSONL: question, answer and reasoning on each line."),
    student: str = typer.Option(..., "--student", help="Student model: offline:NAME, hf:ORG/NAME, or a folder."),
    method: str = typer.Option("cot_sft", "--method", "-m",
                               help="cot_sft, answer_only, step_by_step, curriculum, contrastive, dpo (see rdistill.train)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder for the trained student."),
    lora: bool = typer.Option(True, "--lora/--full", help="LoRA adapter (saved, and merged into the model) or full "
                                                          "fine-tuning."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (default: 2e-4 LoRA, 2e-5 full)."),
    epochs: float = typer.Option(3.0, help="Epochs (per stage for curriculum)."),
    max_steps: Optional[int] = typer.Option(None, help="Optimizer steps (per stage); overrides --epochs."),
    batch_size: int = typer.Option(8, help="Examples per device per micro-batch; with --packing, packed rows."),
    grad_accum: int = typer.Option(1, help="Micro-batches per optimizer step."),
    max_length: int = typer.Option(1024, help="Longest example in tokens (longer ones are dropped); packed row length."),
    packing: bool = typer.Option(False, "--packing/--no-packing", help="Pack whole examples into rows of "
                                 "--max-length tokens; attention never crosses examples."),
    seed: int = typer.Option(0),
    system_prompt: Optional[str] = typer.Option(None, help="System prompt (default: the chat template's own)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a crashed or stopped run from its last checkpoint."),
    save_steps: int = typer.Option(100, help="Checkpoint every N optimizer steps (and at the end of each stage)."),
    save_total_limit: int = typer.Option(2, help="Checkpoints kept per stage."),
    logging_steps: int = typer.Option(1, help="Write metrics every N steps."),
    lora_r: int = typer.Option(16), lora_alpha: int = typer.Option(32), lora_dropout: float = typer.Option(0.05),
    warmup_ratio: float = typer.Option(0.03), weight_decay: float = typer.Option(0.0),
    lr_scheduler: str = typer.Option("cosine", help="Any transformers scheduler name (linear, cosine, constant...)."),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help="(default: on GPUs that support it)"),
    gradient_checkpointing: bool = typer.Option(False, help="Save memory at ~30% more compute."),
    save_merged: bool = typer.Option(False, "--save-merged", help="LoRA: also save the adapter merged into its base "
                                     "in OUT (or later: rdistill export OUT --to hf)."),
    report_to: list[str] = typer.Option([], "--report-to", help="Also log to tensorboard or wandb (repeatable)."),
    rationale_weight: Optional[float] = typer.Option(None, help="step_by_step: loss weight lambda of the rationale "
                                                                "task (label task: 1) (default: 1)."),
    next_step: Optional[bool] = typer.Option(None, "--next-step/--no-next-step",
                                             help="step_by_step: add the next-step objective."),
    difficulty: Optional[str] = typer.Option(None, help="curriculum: steps, length or field (default: steps)."),
    stages: Optional[int] = typer.Option(None, help="curriculum: number of stages (default: 3)."),
    stage_epochs: Optional[str] = typer.Option(None, help='curriculum: epochs per stage, e.g. "1,1,2".'),
    accumulate: Optional[bool] = typer.Option(None, "--accumulate/--no-accumulate", help="curriculum: each stage also trains on the easier stages' traces (default: no)."),
    option: list[str] = typer.Option([], "-O", "--option", help="Any method option as KEY=VALUE (repeatable)."),
):
    """Train a student on teacher traces; writes a Hugging Face model folder with a model card and metrics.jsonl."""
    import os

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from rdistill.train import TrainSettings, train_student
    from rdistill.train.registry import parse_key_values

    method_flags = {"rationale_weight": rationale_weight, "next_step": next_step, "difficulty": difficulty,
                    "stages": stages, "stage_epochs": stage_epochs, "accumulate": accumulate}
    options = {k: v for k, v in method_flags.items() if v is not None} | parse_key_values(option)
    settings = TrainSettings(
        student=student, output_dir=output, lora=lora, lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
        learning_rate=lr, epochs=epochs, max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum,
        max_length=max_length, packing=packing, seed=seed, system_prompt=system_prompt, resume=resume,
        save_steps=save_steps, save_total_limit=save_total_limit, logging_steps=logging_steps,
        warmup_ratio=warmup_ratio, weight_decay=weight_decay, lr_scheduler=lr_scheduler, bf16=bf16,
        gradient_checkpointing=gradient_checkpointing, report_to=list(report_to), save_merged=save_merged)
    main_process = os.environ.get("RANK", "0") == "0"  # under accelerate launch: one bar and one summary
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                   TimeRemainingColumn(), console=err, disable=not main_process)
    task = bar.add_task("training", total=None, info="")

    def on_progress(p):
        if not bar.live.is_started:
            bar.start()  # on the first step, so that errors while loading are not drawn under an empty bar
        loss = f"loss {p.loss:.4f}" if p.loss is not None else ""
        speed = f"{p.tokens_per_s:,.0f} tok/s" if p.tokens_per_s else ""
        stage = f"stage {p.stage}/{p.stages}" if p.stages > 1 else "training"
        bar.update(task, description=stage, completed=p.stage_step, total=p.stage_steps, info=f"{loss} {speed}")

    try:
        result = train_student(traces, settings, method=method, options=options, on_progress=on_progress)
    finally:
        bar.stop()
    if main_process:
        run = result.run
        loss = f"{run['metrics']['final_loss']:.4f}" if run["metrics"].get("final_loss") is not None else "n/a"
        speed = f"{run['metrics']['tokens_per_s']:,.0f}" if run["metrics"].get("tokens_per_s") else "n/a"
        outputs = run["outputs"]
        adapter = ("" if not outputs.get("adapter") else " (merged model; LoRA adapter in adapter/)"
                   if outputs.get("model") else f" (LoRA adapter in adapter/; merged weights: rdistill export {output} "
                   "--to hf)")
        out.print(f"trained a {run['method']} student: {result.steps} steps, final loss {loss}, {speed} tokens/s; "
                  f"wrote {output}{adapter}", soft_wrap=True)


@app.command("eval")
def eval_cmd(
    model: str = typer.Option(..., "--model", help="Model string: a student folder, hf:…, offline:NAME, openai:MODEL[@URL], anthropic:…, llamacpp:FILE.gguf."),
    bench: str = typer.Option(..., "--bench", help="gsm8k, math500, arc_challenge, strategyqa, svamp, multiarith, commonsenseqa, synth:TASK, or a problems .jsonl file."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Result JSONL (one EvalResult per problem and sample); NAME.summary.json is written beside it. Default: runs/eval/MODEL.BENCH.STYLE.jsonl."),
    path: Optional[Path] = typer.Option(None, help="Benchmark from a local upstream file or folder instead of the Hugging Face hub."),
    split: str = typer.Option("test", help="Split to evaluate on (built-in tasks: test)."),
    limit: Optional[int] = typer.Option(None, min=1, help="First N problems (built-in tasks: how many to draw, default 100)."),
    steps: str = typer.Option("1-6", help="Built-in tasks: number of reasoning steps, a range like 1-6."),
    seed: int = typer.Option(0, help="Built-in tasks: which problems to draw; sampling: the base seed."),
    samples: int = typer.Option(1, min=1, help="Samples per problem: k > 1 reports maj@k and pass@k."),
    temperature: Optional[float] = typer.Option(None, min=0.0, help="Default: greedy (0) for one sample, 0.7 for several."),
    top_p: float = typer.Option(1.0, help="Nucleus sampling mass."),
    max_tokens: int = typer.Option(512, min=1, help="Token limit per answer."),
    prompt_style: str = typer.Option("teacher", help="teacher (the generation stage's system prompt), plain, trained (a student folder's own training prompt), or both (writes NAME.plain.jsonl and NAME.teacher.jsonl; the better one is the baseline)."),
    system_prompt: Optional[str] = typer.Option(None, help="A custom system prompt over the plain question (overrides --prompt-style)."),
    student_task: Optional[str] = typer.Option(None, help="With --prompt-style trained: ask a multi-task student through this task instead of the one its method answers with (a step-by-step student: rationale)."),
    role: Optional[str] = typer.Option(None, help="teacher, baseline or student: how the report labels this model."),
    faithfulness_n: int = typer.Option(20, min=0, help="Problems that get the faithfulness and coherence probes (0: none)."),
    judge: Optional[str] = typer.Option(None, help="Model string of a judge that scores the steps the arithmetic checker cannot check."),
    batch_size: int = typer.Option(16, min=1, help="Rows per batch for local transformers (hf:) models."),
    concurrency: Optional[int] = typer.Option(None, min=1, help="Requests in flight (API models, llama-server)."),
    cache: bool = typer.Option(True, help="Use the response cache shared with generation (--no-cache to always call the model)."),
):
    """Evaluate a model on a benchmark or built-in task: answers judged by the shared checker, accuracy with 95%
    intervals, and reasoning quality (steps, arithmetic validity, faithfulness, coherence)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rdistill.evaluate.comparison import evaluate_baseline
    from rdistill.evaluate.options import EvalOptions
    from rdistill.evaluate.problems import bench_label, load_problems
    from rdistill.evaluate.runner import evaluate

    style = "teacher" if prompt_style == "both" else prompt_style
    if prompt_style == "both" and system_prompt is not None:
        raise RdistillError("--prompt-style both compares the plain and the teacher prompt; drop --system-prompt")
    options = EvalOptions(prompt_style=style, system_prompt=system_prompt, samples=samples, temperature=temperature,
                          top_p=top_p, max_tokens=max_tokens, seed=seed, role=role, faithfulness_n=faithfulness_n,
                          judge=judge, student_task=student_task)
    problems = load_problems(bench, path=path, split=split, limit=limit, seed=seed, steps=steps)
    label = bench_label(bench)
    if output is None:  # runs/ is where pipeline outputs live (and what git ignores)
        slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in f"{model}.{label}").strip("-.")
        asked = f"{options.style}.{student_task}" if student_task else options.style
        output = Path("runs") / "eval" / (f"{slug}.jsonl" if prompt_style == "both" else f"{slug}.{asked}.jsonl")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bars:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bars.add_task(phase, total=total)
            bars.update(tasks[phase], completed=done, total=total)

        common = dict(bench=label, cache=cache, batch_size=batch_size, concurrency=concurrency, progress=progress)
        if prompt_style == "both":
            both = evaluate_baseline(model, problems, options=options, **common)
            stem = output.name.removesuffix(".jsonl")
            runs = {"plain": (both.plain, output.with_name(f"{stem}.plain.jsonl")),
                    "teacher": (both.teacher, output.with_name(f"{stem}.teacher.jsonl"))}
        else:
            runs = {options.style: (evaluate(model, problems, options=options, **common), output)}
    for style_name, (run, target) in runs.items():
        results_path, summary_path = run.write(target)
        _print_eval_summary(run.summary, results_path, summary_path)
    if prompt_style == "both":
        out.print(f"better prompt for {model}: {both.chosen_style} (the baseline a report compares against)",
                  markup=False)


def _print_eval_summary(summary: dict, results_path: Path, summary_path: Path) -> None:
    acc = summary["accuracy"]

    def rate(entry: dict) -> str:
        if entry["value"] is None:
            return "n/a (n=0)"
        lo, hi = entry["ci"]
        return f"{entry['value']:.1%} (95% CI {lo:.1%}–{hi:.1%}, n={entry['n']})"

    k = acc["samples"]
    head = f"maj@{k} {rate(acc['accuracy'])}, pass@{k} {rate(acc[f'pass@{k}'])}" if k > 1 else f"accuracy {rate(acc['accuracy'])}"
    cut = acc.get("truncated") or {}
    cut_text = f"cut off at max_tokens {cut['cut_off']}/{cut['known']}, " if cut.get("known") else ""
    out.print(f"{summary['model']} on {summary['bench']} [{summary['prompt_style']} prompt]: {head}; "
              f"{cut_text}no answer found in {acc['unanswered']}, failed calls {acc['errors']}", soft_wrap=True,
              markup=False)
    for name, q in summary["quality"].items():
        if q["n"]:
            out.print(f"  {name}: {q['mean']:.3f} (95% CI {q['ci'][0]:.3f}–{q['ci'][1]:.3f}, n={q['n']})", markup=False)
    tps = summary["throughput"]["tokens_per_second"]
    out.print(f"  wrote {results_path} and {summary_path}"
              + (f"; {tps:.1f} generated tokens/s" if tps else ""), soft_wrap=True, markup=False)


@app.command("report")
def report_cmd(
    inputs: list[Path] = typer.Argument(..., help="Result files from `rdistill eval`, or run folders holding them (and ledgers)."),
    output: Path = typer.Option(..., "-o", "--output", help="Report folder: report.md, report.html (self-contained), report.json, plots/."),
    ledger: list[Path] = typer.Option([], help="A teacher ledger JSON (the cost of generation); repeatable."),
    role: list[str] = typer.Option([], help="MODEL=ROLE (teacher, baseline or student), overriding the role recorded at eval time; repeatable."),
    hourly_usd: float = typer.Option(1.0, min=0.0, help="Assumed hourly price of the machine that measured local throughput."),
    prices: Optional[Path] = typer.Option(None, help="Price table (JSON or YAML) for API models."),
    allow_mismatch: bool = typer.Option(False, help="Compare only the common problems when result sets differ in problems or decoding."),
    compare_with: list[str] = typer.Option([], "--compare-with", help="An API model of the price table (e.g. openai:gpt-4o-mini) to compute each student's break-even against; repeatable."),
):
    """Compare evaluated models (teacher, baseline, students) in Markdown and a self-contained HTML page."""
    from rdistill.report import build_report

    roles = {}
    for item in role:
        model_name, sep, role_name = item.rpartition("=")
        if not sep or not model_name:
            raise RdistillError(f"--role expects MODEL=ROLE, got {item!r}")
        roles[model_name] = role_name
    files = build_report(inputs, output, ledgers=ledger, roles=roles, hourly_usd=hourly_usd, prices=prices,
                         allow_mismatch=allow_mismatch, compare_with=compare_with)
    out.print(f"report on {len(files.result_files)} result file(s) written to {files.html}, {files.markdown} and "
              f"{files.json} ({len(files.plots)} plots)", soft_wrap=True, markup=False)


@app.command("compare")
def compare_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run folder (rdistill run / quickstart)."),
    against: str = typer.Option("cot_sft", "--against", help="The student every other is compared with, paired."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Also write the table here (Markdown), and its JSON beside it."),
):
    """The method table of a run: every model on every evaluation set (Wilson intervals), each student's paired
    difference from --against (exact McNemar), teacher tokens and dollars behind its data, training minutes."""
    import json

    from rdistill.report.method_table import method_table, render_markdown

    table = method_table(run_dir, against=against)
    text = render_markdown(table)
    out.print(text, markup=False, soft_wrap=True)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        output.with_suffix(".json").write_text(json.dumps(table, indent=2, default=str) + "\n", encoding="utf-8")
        out.print(f"wrote {output} and {output.with_suffix('.json')}", markup=False, soft_wrap=True)


@app.command("export")
def export_cmd(
    student: Path = typer.Argument(..., help="A student folder written by `rdistill train` (in a run: RUN/train/NAME)."),
    to: str = typer.Option(..., "--to", help="hf (merged transformers folder), gguf (one llama.cpp file) or ollama (GGUF + Modelfile)."),
    output: Path = typer.Option(..., "-o", "--output", help="A new folder for the export (an existing non-empty one is refused)."),
    quant: str = typer.Option("q8_0", "--quant", help="GGUF type: q8_0 (default), q6_k, q5_k_m, q4_k_m, q4_0, f16 or f32 (gguf, ollama); q4_k_m of a student whose base is already 4-bit loses much of the fine-tune (bench/results/export_student-quickstart.json)."),
    base_gguf: Optional[Path] = typer.Option(None, "--base-gguf", help="The base model's GGUF, when the student does not descend from one rdistill knows (gguf, ollama)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Weights dtype of an hf export: float32 (default), bfloat16 or float16."),
):
    """Export a student where people run small models: merged weights, a quantized GGUF, or an Ollama model."""
    from rdistill.export import export_student

    done = export_student(student, to, output, quant=quant, base_gguf=base_gguf, dtype=dtype)
    sizes = ", ".join(f"{name} {file['bytes'] / 1e6:.1f} MB" for name, file in done["files"].items())
    out.print(f"exported {done['describes']} as {to} to {done['output']} in {done['seconds']:.0f}s: {sizes}",
              soft_wrap=True, markup=False)
    if to == "ollama":
        out.print(f"then: cd {done['output']} && ollama create NAME -f Modelfile", soft_wrap=True, markup=False)


@app.command("run")
def run_cmd(
    recipe: Path = typer.Argument(..., help="Recipe YAML file (see recipes/)."),
    overrides: Optional[list[str]] = typer.Argument(None, help="KEY.PATH=VALUE overrides, e.g. train.epochs=3 "
                                                             "data.eval.transfer.path=/data/multiarith."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run folder (default: runs/NAME, NAME from the recipe)."),
    force: list[str] = typer.Option([], "--force", help="Run this stage again, and everything after it that reads it: a "
                                                        "stage (generate, train:cot_sft, eval:teacher:heldout), a group "
                                                        "(train, eval, eval:teacher) or all; repeatable."),
    check: bool = typer.Option(False, "--check", help="Validate the recipe and list its stages; run nothing."),
    show_progress: bool = typer.Option(True, "--progress/--no-progress", help="Draw progress bars."),
):
    """Run a whole recipe (data, generate, filter, train, eval, report) in one run folder. Stages whose inputs did
    not change are skipped; an interrupted run continues where it stopped."""
    from rdistill.pipeline.recipe import load_recipe

    _run_pipeline(load_recipe(recipe, list(overrides or [])), run_dir, force, check, show_progress)


@app.command("quickstart")
def quickstart_cmd(
    overrides: Optional[list[str]] = typer.Argument(None, help="KEY.PATH=VALUE overrides of the embedded recipe."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run folder (default: runs/quickstart)."),
    force: list[str] = typer.Option([], "--force", help="Run this stage (or group: train, eval) again; repeatable."),
    check: bool = typer.Option(False, "--check", help="Validate the recipe and list its stages; run nothing."),
    show_progress: bool = typer.Option(True, "--progress/--no-progress", help="Draw progress bars."),
):
    """Distill arithmetic reasoning from the offline 1.5B teacher into the offline 0.5B student on this machine and
    report whether it helped (the embedded recipe, the same as recipes/quickstart.yaml). Runs from any folder with
    no network: its GSM8K and MultiArith problems ship with the package (data.eval.transfer.path=PATH reads another
    copy)."""
    from rdistill.pipeline.recipe import load_quickstart

    _run_pipeline(load_quickstart(list(overrides or [])), run_dir, force, check, show_progress)


def _run_pipeline(loaded, run_dir: Optional[Path], force: list[str], check: bool, show_progress: bool) -> None:
    from rdistill.pipeline.console import ConsoleObserver, print_headline
    from rdistill.pipeline.runner import default_run_dir, forced_stages, plan_stages, run_recipe
    from rdistill.pipeline.stages import StageIncomplete

    plan = plan_stages(loaded)
    forced_stages(plan, list(force))  # a bad --force fails here, before anything is written
    target = run_dir or default_run_dir(loaded)
    if check:
        out.print(f"{loaded.source}: valid; {len(plan)} stages in {target}:", markup=False, soft_wrap=True)
        for stage in plan:
            deps = stage.deps if len(stage.deps) <= 3 else [*stage.deps[:2], f"{len(stage.deps) - 2} more"]
            out.print(f"  {stage.name}  <- {', '.join(deps) or 'recipe'}", markup=False)
        return
    try:
        result = run_recipe(loaded, target, force=list(force), plan=plan,
                            observer=ConsoleObserver(out, err, bars=show_progress and err.is_terminal))
    except StageIncomplete as e:
        err.print(f"stopped: {e}", markup=False, soft_wrap=True)
        sys.exit(e.exit_code)
    ran = len(result.ran())
    out.print(f"{ran} stage(s) ran, {len(result.outcomes) - ran} skipped (unchanged); run folder {result.run_dir}",
              markup=False, soft_wrap=True)
    print_headline(out, result)


def _exit_on_sigterm(signum, frame) -> None:
    # Python's default for SIGTERM ends the process without unwinding: no atexit, so llama-server children and
    # a stage's "running" record would be left as they are. As SystemExit the run stops like on Ctrl-C.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        app(args=argv, standalone_mode=False, prog_name="rdistill")
    except RdistillError as e:
        err.print(f"error: {e}", markup=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err.print("interrupted", markup=False)
        sys.exit(130)


if __name__ == "__main__":
    main()
