"""The whole pipeline from one recipe (default: the embedded quickstart), timed per stage.

    python bench/pipeline_stages.py                                    # the quickstart, fresh run folder
    python bench/pipeline_stages.py recipes/gsm8k.yaml train.epochs=1  # any recipe, with overrides
    python bench/pipeline_stages.py --keep                             # reuse the run folder: skipped stages
                                                                       # show as skipped, interrupted ones resume

Runs `rdistill.pipeline.run_recipe` in this process with the same progress display as `rdistill run`, then prints
one line per stage (status, seconds, calls, tokens) and writes bench/results/pipeline_stages-NAME.json: per stage
its status, seconds, usage and detail (from the run's manifest.json), the totals, the recipe (resolved, with its
sha256 and overrides), package versions and the machine. The run folder defaults to runs/bench-NAME and is emptied
first unless --keep is given, so that every stage is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]  # runs from a checkout, no install needed

from eval_phases import eval_phases  # noqa: E402
from rich.console import Console  # noqa: E402

from rdistill.errors import RdistillError  # noqa: E402
from rdistill.pipeline.console import ConsoleObserver, print_headline  # noqa: E402
from rdistill.pipeline.recipe import load_quickstart, load_recipe  # noqa: E402
from rdistill.pipeline.runner import run_recipe  # noqa: E402


class LoadSampler:
    """The 1-minute load average before, during (every 30 s) and after the run: a busy machine explains slow stages."""

    def __init__(self, every_s: float = 30.0):
        self.every_s, self.samples, self._stop = every_s, [], threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.every_s):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> "LoadSampler":
        self.before = os.getloadavg()[0]
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.after = os.getloadavg()[0]

    def summary(self) -> dict:
        during = self.samples or [self.after]
        return {"before_1min": round(self.before, 2), "after_1min": round(self.after, 2),
                "during_mean_1min": round(sum(during) / len(during), 2), "during_max_1min": round(max(during), 2),
                "samples": len(self.samples), "cpus": os.cpu_count()}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# CPU features that decide llama.cpp's and torch's speed: "2 cores" of an AMD EPYC without AVX-512 generated far
# slower than the machine of the earlier results (which recorded no CPU); every result now says which it ran on.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "fma")


def cpu_flags() -> list[str]:
    """Which of SPEED_FLAGS /proc/cpuinfo lists (empty where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in SPEED_FLAGS if flag in present]
    except OSError:
        pass
    return []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", nargs="?", help="Recipe YAML (default: the embedded quickstart).")
    ap.add_argument("overrides", nargs="*", help="KEY.PATH=VALUE overrides.")
    ap.add_argument("--run-dir", type=Path, help="Run folder (default: runs/bench-NAME).")
    ap.add_argument("--keep", action="store_true", help="Keep the run folder's finished stages (default: start empty).")
    ap.add_argument("--out", type=Path, help="Result JSON (default: bench/results/pipeline_stages-NAME.json).")
    ap.add_argument("--no-progress", action="store_true", help="No progress bars.")
    args = ap.parse_args()
    # `rdistill run RECIPE k=v`: a first positional argument holding "=" is an override of the quickstart.
    if args.recipe and "=" in args.recipe and not Path(args.recipe).is_file():
        args.overrides.insert(0, args.recipe)
        args.recipe = None

    out, err = Console(highlight=False, emoji=False), Console(stderr=True, highlight=False, emoji=False)
    try:
        loaded = load_recipe(args.recipe, args.overrides) if args.recipe else load_quickstart(args.overrides)
    except RdistillError as e:
        err.print(f"error: {e}", markup=False, soft_wrap=True)
        sys.exit(2)
    name = loaded.recipe.name
    run_dir = args.run_dir or ROOT / "runs" / f"bench-{name}"
    if run_dir.exists() and not args.keep:
        shutil.rmtree(run_dir)
    load = LoadSampler()
    started = time.perf_counter()
    with load:
        result = run_recipe(loaded, run_dir, observer=ConsoleObserver(out, err, bars=not args.no_progress))
    wall = time.perf_counter() - started

    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    stages = []
    for outcome in result.outcomes:
        entry = manifest["stages"].get(outcome.name, {})
        stages.append({"stage": outcome.name, "status": outcome.status, "reason": outcome.reason,
                       "seconds": round(outcome.seconds, 3), "seconds_all_attempts": entry.get("seconds"),
                       "attempts": entry.get("attempts"), "usage": entry.get("usage"), "detail": entry.get("detail")})
    by_kind: dict[str, float] = {}
    for s in stages:
        kind = s["stage"].split(":")[0]
        by_kind[kind] = round(by_kind.get(kind, 0.0) + s["seconds"], 3)
    report = {
        "bench": "pipeline_stages", "recipe": name, "source": loaded.source, "recipe_sha256": loaded.sha256,
        "overrides": loaded.overrides, "run_dir": str(run_dir), "fresh": not args.keep,
        "wall_seconds": round(wall, 3), "seconds_by_kind": by_kind, "stages": stages,
        "totals": manifest.get("totals"), "headline": result.headline, "resolved_recipe": manifest["recipe"]["resolved"],
        "versions": manifest.get("versions"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "cpu_model": cpu_model(), "cpu_flags": cpu_flags(), "python_prefix": sys.prefix,
                    "cwd": os.getcwd()},
        "load_average": load.summary(),
        "eval_phases": eval_phases(run_dir),  # per result file: answering vs faithfulness probes, cached prompt tokens
    }
    target = args.out or ROOT / "bench" / "results" / f"pipeline_stages-{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")

    width = max(len(s["stage"]) for s in stages)
    out.print(f"{'stage':<{width}}  {'status':<8} {'seconds':>9}  {'calls':>6} {'tokens out':>10}", markup=False)
    for s in stages:
        usage = s["usage"] or {}
        out.print(f"{s['stage']:<{width}}  {s['status']:<8} {s['seconds']:>9.1f}  {usage.get('calls', ''):>6} "
                  f"{usage.get('completion_tokens', ''):>10}", markup=False)
    out.print("by kind: " + ", ".join(f"{k} {v:.1f}s" for k, v in by_kind.items()) + f"; wall {wall:.1f}s",
              markup=False)
    print_headline(out, result)
    out.print(f"wrote {target}", markup=False)


if __name__ == "__main__":
    main()
