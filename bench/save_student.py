"""What saving a LoRA student costs, with and without the merged copy (`train.save_merged`, off by default).

    python bench/save_student.py                          # the quickstart's student, Qwen2.5-Coder-0.5B-Instruct
    python bench/save_student.py --student offline:smollm2-135m-instruct

Loads the student as training does (float32, CPU), puts the quickstart's LoRA on it (r 16, alpha 32, all linear
layers), and saves it as a finished run would, three times each way: the adapter only, and the adapter plus the
merged model (merge_and_unload + save_pretrained). Prints seconds and bytes written; writes
bench/results/save_student-<student name>.json with the machine and load averages.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]
RESULTS = ROOT / "bench" / "results"

from eval_noise import git_revision, load_average, machine  # noqa: E402


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", default="offline:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from peft import get_peft_model

    from rdistill.models import load_causal_lm
    from rdistill.train.core import lora_config
    from rdistill.train.saving import save_student
    from rdistill.train.settings import TrainSettings

    load_before = load_average()
    runs = {"adapter only": [], "adapter + merged": []}
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="save-student-") as tmp:
        for repeat in range(args.repeats):
            for label, merged in (("adapter only", False), ("adapter + merged", True)):
                model, tokenizer = load_causal_lm(args.student, dtype="float32", device="cpu", for_training=True)
                settings = TrainSettings(student=args.student, output_dir=Path(tmp) / "x", lora_r=16, lora_alpha=32)
                peft_model = get_peft_model(model, lora_config(settings))
                out = Path(tmp) / f"{repeat}-{merged}"
                started = time.perf_counter()
                save_student(peft_model, tokenizer, out, student=args.student, merged=merged)
                runs[label].append(round(time.perf_counter() - started, 2))
                sizes[label] = folder_bytes(out)
                shutil.rmtree(out)
                print(f"{label}: {runs[label][-1]:.1f}s, {sizes[label] / 1e6:.0f} MB", flush=True)
    name = args.student.split(":")[-1].rstrip("/").rsplit("/", 1)[-1]
    out_path = args.out or RESULTS / f"save_student-{name}.json"
    report = {"bench": "save_student", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "student": args.student, "seconds": runs, "bytes": sizes,
              "median_seconds": {k: sorted(v)[len(v) // 2] for k, v in runs.items()},
              "machine": machine(), "load_average_before": load_before, "load_average_after": load_average(),
              "git": git_revision(), "command": " ".join([sys.executable, *sys.argv]), "threads": os.cpu_count()}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
