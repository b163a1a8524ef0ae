"""The quickstart's generate stage on a busy machine: does it finish in one go while another job takes the CPUs?

    python bench/generate_under_load.py              # all 260 training problems, 2 CPU hogs on a 2-core machine
    python bench/generate_under_load.py --limit 8    # a quick check
    python bench/generate_under_load.py --hogs 0     # the same without load, to compare

Runs the embedded quickstart recipe's data and generate stages (teacher llamaserver:offline:qwen2.5-coder-1.5b-instruct,
strategy domain:math, max_tokens 256) with `run_recipe`, in a fresh run folder (default runs/bench-generate-under-load)
and with an empty response cache in that folder, while --hogs processes (default: one per CPU) spin at normal
priority. The hogs start after the data stage, once the load average was read, and are always stopped, also on
Ctrl-C; each also ends by itself once this script is gone.

Writes bench/results/generate_under_load.json: wall seconds of the generate stage, samples asked and written,
failures, in-run retries, every change of the requests in flight, the load average before and during, the
machine, the date and the command; prints a small table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]  # runs from a checkout, no install needed

from pipeline_stages import LoadSampler, cpu_flags, cpu_model  # noqa: E402
from rich.console import Console  # noqa: E402

import rdistill.teachers  # noqa: E402
from rdistill.errors import RdistillError  # noqa: E402
from rdistill.pipeline.console import ConsoleObserver  # noqa: E402
from rdistill.pipeline.recipe import load_quickstart  # noqa: E402
from rdistill.pipeline.runner import PARTIAL_DIR, plan_stages, run_recipe  # noqa: E402

# A hog spins until its parent (this script) is gone, so a killed benchmark leaves no spinning process behind.
HOG = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    for _ in range(1_000_000): pass\n"


class Hogs:
    """`n` processes that keep one CPU each busy, started and stopped with the block."""

    def __init__(self, n: int):
        self.n, self.processes = n, []
        self.command = [sys.executable, "-c", HOG]

    def __enter__(self) -> "Hogs":
        self.processes = [subprocess.Popen(self.command, stdin=subprocess.DEVNULL) for _ in range(self.n)]
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class KeepClients:
    """The generate stage makes and closes its teacher client itself: keep a reference to each one it makes, to read
    the changes of its requests in flight afterwards."""

    def __init__(self):
        self.clients, self._make = [], rdistill.teachers.make_teacher

    def __enter__(self) -> "KeepClients":
        def make_teacher(*args, **kwargs):
            client = self._make(*args, **kwargs)
            self.clients.append(client)
            return client

        rdistill.teachers.make_teacher = make_teacher  # run_generate imports it from the package when it runs
        return self

    def __exit__(self, *exc) -> None:
        rdistill.teachers.make_teacher = self._make


def generation_summary(run_dir: Path, folder: str) -> dict:
    for where in (run_dir / folder, run_dir / PARTIAL_DIR / folder):  # done, or stopped incomplete
        if (where / "summary.json").is_file():
            return json.loads((where / "summary.json").read_text(encoding="utf-8"))
    return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, help="Only the first N training problems (a quick check).")
    ap.add_argument("--hogs", type=int, default=os.cpu_count() or 2, help="CPU hog processes (default: one per CPU).")
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "bench-generate-under-load")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "generate_under_load.json")
    ap.add_argument("overrides", nargs="*", help="Recipe KEY.PATH=VALUE overrides, e.g. "
                    "teacher.backend_options.slots=8")
    args = ap.parse_args()
    # Changes of the requests in flight, retry rounds and failed samples, as they happen.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in ("rdistill.teachers.client", "rdistill.generate.runner"):
        logging.getLogger(name).setLevel(logging.INFO)
    # A SIGTERM unwinds like Ctrl-C: the hogs and llama-server are stopped and what was measured is written.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    out, err = Console(highlight=False, emoji=False), Console(stderr=True, highlight=False, emoji=False)
    run_dir = args.run_dir.resolve()
    if run_dir.exists():
        shutil.rmtree(run_dir)
    overrides = [f"cache={run_dir / 'responses.sqlite'}", *args.overrides]  # an empty cache: every sample is asked
    if args.limit:
        overrides.append(f"generate.limit={args.limit}")
    try:
        loaded = load_quickstart(overrides)
    except RdistillError as e:
        err.print(f"error: {e}", markup=False, soft_wrap=True)
        sys.exit(2)
    plan = {s.name: s for s in plan_stages(loaded)}
    observer = ConsoleObserver(out, err)
    run_recipe(loaded, run_dir, plan=[plan["data"]], observer=observer)  # not timed, not under load

    load = LoadSampler(every_s=10.0)
    error = None
    with load, Hogs(args.hogs) as hogs, KeepClients() as kept:  # the load average is read before the hogs start
        started = time.perf_counter()
        try:
            run_recipe(loaded, run_dir, plan=[plan["data"], plan["generate"]], observer=observer)
        except RdistillError as e:  # e.g. the stage ended incomplete: recorded, not hidden
            error = f"{type(e).__name__}: {e}"
        except (KeyboardInterrupt, SystemExit) as e:
            error = f"interrupted ({type(e).__name__})"
        wall = time.perf_counter() - started

    summary = generation_summary(run_dir, plan["generate"].folder)
    changes = [asdict(c) for client in kept.clients for c in getattr(client, "concurrency_changes", [])]
    problems = summary.get("problems")
    if problems is None:  # interrupted before the stage wrote its summary: what it was asked for
        train = sum(1 for _ in (run_dir / plan["data"].folder / "train.jsonl").open(encoding="utf-8"))
        problems = min(train, args.limit or train)
    report = {
        "bench": "generate_under_load",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "teacher": loaded.recipe.teacher.model, "strategy": loaded.recipe.generate.strategy,
        "max_tokens": loaded.recipe.generate.max_tokens, "limit": args.limit, "overrides": loaded.overrides,
        "run_dir": str(run_dir),
        "hogs": {"processes": args.hogs, "command": hogs.command[:2] + ["<spin until the parent is gone>"]},
        "wall_seconds": round(wall, 1),
        "samples_asked": problems * (loaded.recipe.generate.samples or 1),
        "samples_written": summary.get("traces_written"),
        "failures": summary.get("failures"),
        "retried": summary.get("retried"),
        "retry_rounds": summary.get("retry_rounds"),
        "complete": error is None and summary.get("failures") == 0,
        "error": error,
        "first_error": summary.get("first_error"),
        "calls": summary.get("calls"),
        "client_retries": sum(m.get("retries", 0) for m in (summary.get("ledger") or {}).get("models", {}).values()),
        "concurrency_start": kept.clients[0].concurrency if kept.clients else None,
        "concurrency_changes": changes,
        "load_average": load.summary(),
        "machine": {"nproc": os.cpu_count(), "cpu_model": cpu_model(), "cpu_flags": cpu_flags(),
                    "platform": platform.platform(),
                    "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")

    rows = [("wall seconds", report["wall_seconds"]), ("samples asked", report["samples_asked"]),
            ("samples written", report["samples_written"]), ("failures", report["failures"]),
            ("retried in the run", report["retried"]), ("client retries", report["client_retries"]),
            ("in flight", " -> ".join(str(n) for n in [report["concurrency_start"], *(c["new"] for c in changes)])
                          + ("" if changes else " (unchanged)")),
            ("load average", f"{load.before:.1f} before, {load.summary()['during_mean_1min']:.1f} during "
                             f"({args.hogs} hogs, {os.cpu_count()} CPUs)"),
            ("complete", report["complete"])]
    for name, value in rows:
        out.print(f"{name:<20} {value}", markup=False)
    if error:
        out.print(f"error: {error}", markup=False, soft_wrap=True)
    out.print(f"wrote {args.out}", markup=False)
    if error and error.startswith("interrupted"):
        sys.exit(130)


if __name__ == "__main__":
    main()
