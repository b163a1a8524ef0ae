"""A new user's first two commands, timed: a new virtual environment with no torch, `bash scripts/setup.sh`, then
`rdistill quickstart --check` from an empty temporary folder (no shared/ anywhere above it).

    python3 bench/fresh_install.py [--dev] [--venv DIR] [--out bench/results/fresh_install.json]

The venv is made with the Python running this script (`python3 -m venv --clear`); pip's wheel cache is whatever
this machine has (the result records whether llama.cpp's wheels were already built, by the setup log). Writes the
seconds of each step, exit codes, the tails of their output, what install_check found, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], *, cwd: Path, env: dict) -> dict:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    output = "\n".join(line for line in (done.stdout + done.stderr).splitlines()
                       if not line.startswith("WARNING: Location"))  # this machine's pip config, not ours
    return {"command": " ".join(cmd), "cwd": str(cwd), "seconds": round(time.perf_counter() - started, 1),
            "returncode": done.returncode, "output_tail": output[-3000:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev", action="store_true", help="setup.sh --dev (what the tests need too)")
    ap.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "rdistill-fresh-venv")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fresh_install.json")
    args = ap.parse_args()

    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    steps = {"venv": timed([sys.executable, "-m", "venv", "--clear", str(args.venv)], cwd=ROOT, env=env)}
    env["PATH"] = f"{args.venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(args.venv)
    python = str(args.venv / "bin" / "python")
    steps["torch_before"] = timed([python, "-c", "import torch"], cwd=ROOT, env=env)
    setup = ["bash", str(ROOT / "scripts" / "setup.sh")] + (["--dev"] if args.dev else [])
    empty = Path(tempfile.mkdtemp(prefix="rdistill-empty-"))
    steps["setup"] = timed(setup, cwd=empty, env=env)
    steps["quickstart_check"] = timed([str(args.venv / "bin" / "rdistill"), "quickstart", "--check"], cwd=empty,
                                      env=env)
    steps["install_check"] = timed([python, "-m", "rdistill.install_check", "--json"], cwd=empty, env=env)
    shutil.rmtree(empty, ignore_errors=True)
    ok = (steps["torch_before"]["returncode"] != 0 and steps["setup"]["returncode"] == 0
          and steps["quickstart_check"]["returncode"] == 0)
    result = {
        "bench": "fresh_install", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "ok": ok,
        "torch_absent_before": steps["torch_before"]["returncode"] != 0,
        "seconds_setup_and_check": round(steps["setup"]["seconds"] + steps["quickstart_check"]["seconds"], 1),
        "steps": steps,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_after": os.getloadavg()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, step in steps.items():
        print(f"{name:<17} exit {step['returncode']:>3}  {step['seconds']:>8.1f} s")
    print(f"{'ok' if ok else 'FAILED'}: setup + quickstart --check in {result['seconds_setup_and_check']} s; wrote {args.out}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
