"""Kill a real pipeline run with SIGKILL inside chosen stages and run it again each time: does it go on from there?

    python bench/pipeline_resume.py --run-dir /tmp/qs-resume \\
        --kill generate@120 --kill eval:teacher:heldout@60 --kill train:cot_sft@330 --kill eval:cot_sft:transfer@20 \\
        cache=/tmp/qs-resume.sqlite
    python bench/pipeline_resume.py recipes/gsm8k.yaml --kill ... KEY=VALUE ...   # any recipe

Each attempt is `python -m rdistill run|quickstart ... --run-dir RUN` in its own process group. When the manifest
says the target stage has been running for the given seconds, the whole group (rdistill and its llama-server
children) gets SIGKILL, as a batch scheduler or an out-of-memory kill would do it; the next attempt starts at once.
The last attempt runs to the end. For every kill the script records what the next attempt did, from its log and the
manifest: the stages it skipped as finished, the stage it resumed (and, for generation and training, how much work
it found), and the seconds the killed attempt had spent. It checks that no finished stage ran twice and that every
killed stage resumed; it prints a table and writes bench/results/pipeline_resume-NAME.json (with the final
manifest's per-stage seconds and the report's headline table, so timings and accuracies come out of the same run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^\[(\d+)/(\d+)\] (\S+): (.*)$")


def parse_kill(text: str) -> tuple[str, float]:
    stage, sep, seconds = text.rpartition("@")
    if not sep or not stage:
        raise SystemExit(f"--kill wants STAGE@SECONDS (e.g. generate@120), got {text!r}")
    return stage, float(seconds)


def manifest(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def stage_lines(log: Path) -> dict[str, list[str]]:
    """stage -> what each '[i/n] stage: ...' line of one attempt's log said about it."""
    said: dict[str, list[str]] = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        m = LINE.match(line.strip())
        if m:
            said.setdefault(m.group(3), []).append(m.group(4))
    return said


def group_alive(pgid: int) -> list[str]:
    """Command lines of the live processes of a process group. Zombies (exited, not yet reaped by PID 1) are not
    alive: they hold no memory and have an empty command line."""
    alive = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.getpgid(int(proc.name)) != pgid:
                    continue
                if (proc / "stat").read_text().rsplit(") ", 1)[1].startswith("Z"):
                    continue
                alive.append((proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace"))
            except (OSError, ProcessLookupError, IndexError):
                continue
    return alive


def wait_group_gone(pgid: int, within_s: float = 10.0) -> list[str]:
    deadline = time.monotonic() + within_s
    while (alive := group_alive(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def attempt(command: list[str], run_dir: Path, log: Path, kill: tuple[str, float] | None) -> dict:
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
                                env={**os.environ, "COLUMNS": "120"})
    seen_running: float | None = None
    killed = False
    while proc.poll() is None:
        time.sleep(1.0)
        if kill is None:
            continue
        entry = (manifest(run_dir).get("stages") or {}).get(kill[0]) or {}
        if entry.get("status") == "running":
            seen_running = seen_running or time.monotonic()
            if time.monotonic() - seen_running >= kill[1]:
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                proc.wait()
        elif entry.get("status") == "done":
            raise SystemExit(f"stage {kill[0]} finished before {kill[1]:g} s: kill it earlier")
    leftovers = []
    if killed:
        leftovers = wait_group_gone(proc.pid)
    return {"command": command, "log": str(log), "returncode": proc.returncode, "killed": killed,
            "kill": f"{kill[0]}@{kill[1]:g}" if kill else None, "seconds": round(time.monotonic() - started, 1),
            "processes_left_after_kill": leftovers, "said": stage_lines(log)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", nargs="?", help="Recipe YAML (default: the embedded quickstart).")
    ap.add_argument("overrides", nargs="*", help="KEY.PATH=VALUE overrides.")
    ap.add_argument("--run-dir", type=Path, required=True, help="Run folder (emptied first).")
    ap.add_argument("--kill", action="append", default=[], type=parse_kill, metavar="STAGE@SECONDS",
                    help="Kill the run this many seconds into this stage (repeatable, in run order).")
    ap.add_argument("--out", type=Path, help="Result JSON (default: bench/results/pipeline_resume-NAME.json).")
    args = ap.parse_args()
    if args.recipe and "=" in args.recipe and not Path(args.recipe).is_file():
        args.overrides.insert(0, args.recipe)
        args.recipe = None
    name = Path(args.recipe).stem if args.recipe else "quickstart"
    base = [sys.executable, "-m", "rdistill"] + (["run", args.recipe] if args.recipe else ["quickstart"])
    command = base + list(args.overrides) + ["--run-dir", str(args.run_dir), "--no-progress"]
    if args.run_dir.exists():
        subprocess.run(["rm", "-rf", str(args.run_dir)], check=True)
    logs = args.run_dir.with_name(args.run_dir.name + "-logs")
    logs.mkdir(parents=True, exist_ok=True)

    attempts = []
    for i, kill in enumerate([*args.kill, None]):
        print(f"attempt {i + 1}: " + (f"kill in {kill[0]} after {kill[1]:g} s" if kill else "to the end"), flush=True)
        result = attempt(command, args.run_dir, logs / f"attempt-{i + 1}.log", kill)
        attempts.append(result)
        if not result["killed"] and result["returncode"] != 0:
            raise SystemExit(f"attempt {i + 1} failed (exit {result['returncode']}); see {result['log']}")
        if kill is None and result["killed"]:
            raise SystemExit("internal: the last attempt was killed")

    final = manifest(args.run_dir)
    stages = final.get("stages") or {}
    checks, rows = [], []
    for i, kill in enumerate(args.kill):
        killed_stage = kill[0]
        before = attempts[i]["said"]
        after = attempts[i + 1]["said"]
        # Stages run one after another, so every stage the killed attempt mentioned, bar the one it was killed
        # in, had finished (ran or was skipped as finished) before the kill.
        finished_before = [s for s in before if s != killed_stage]
        rerun = [s for s in finished_before if s in after and not all(x.startswith("skipped") for x in after[s])]
        resumed = any("resuming" in x for x in after.get(killed_stage, []))
        entry = stages.get(killed_stage) or {}
        rows.append({"kill": f"{killed_stage}@{kill[1]:g}", "stages_finished_before": len(finished_before),
                     "skipped_after": sum(1 for s in finished_before if s in after and s not in rerun),
                     "finished_stages_run_again": rerun, "resumed": resumed,
                     "attempts_of_stage": entry.get("attempts"), "detail": entry.get("detail"),
                     "processes_left_after_kill": attempts[i]["processes_left_after_kill"]})
        checks.append(not rerun and resumed and not attempts[i]["processes_left_after_kill"])

    print(f"\n{'kill':34} {'finished before':>15} {'skipped after':>13} {'resumed':>8} {'stage attempts':>14}")
    for r in rows:
        print(f"{r['kill']:34} {r['stages_finished_before']:>15} {r['skipped_after']:>13} {str(r['resumed']):>8} "
              f"{r['attempts_of_stage']!s:>14}")
        if r["finished_stages_run_again"]:
            print(f"    ran again: {', '.join(r['finished_stages_run_again'])}")
        if r["processes_left_after_kill"]:
            print(f"    left running after the kill: {r['processes_left_after_kill']}")
    seconds = {s: {"seconds": e.get("seconds"), "seconds_this_attempt": e.get("seconds_this_attempt"),
                   "attempts": e.get("attempts"), "status": e.get("status")} for s, e in stages.items()}
    ok = all(checks) and all(e.get("status") == "done" for e in stages.values())
    print(f"\nall stages done: {all(e.get('status') == 'done' for e in stages.values())}; "
          f"every kill resumed without redoing a finished stage: {all(checks)}")
    headline = args.run_dir / "report" / "headline.json"  # the report stage's table: accuracy, interval, n
    out = args.out or ROOT / "bench" / "results" / f"pipeline_resume-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bench": "pipeline_resume", "recipe": args.recipe or "quickstart (embedded)",
                               "overrides": args.overrides, "run_dir": str(args.run_dir), "ok": ok, "kills": rows,
                               "attempts": attempts, "stage_seconds": seconds,
                               "headline": json.loads(headline.read_text()) if headline.is_file() else None,
                               "wall_seconds": round(sum(a["seconds"] for a in attempts), 1)}, indent=2),
                   encoding="utf-8")
    print(f"wrote {out}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
