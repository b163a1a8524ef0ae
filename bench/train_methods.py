"""Issue #5, acceptance 1 and 2: which training method teaches the SmolLM2-135M student to reason?

Everything through the real CLI, on the built-in arithmetic task (1-4 steps):

    rdistill data synth --task arithmetic --n 300 --steps 1-4 --seed 0 --split train -o W/train.jsonl
    rdistill data synth --task arithmetic --n 100 --steps 1-4 --seed 1 --split test  -o W/heldout.jsonl
    rdistill generate W/train.jsonl -o W/traces.jsonl --teacher T --strategy cot --samples 1 --max-tokens 256
    rdistill filter W/traces.jsonl -o W/kept.jsonl --check-grounded --report W/filter.json
    rdistill train W/kept.jsonl --student offline:smollm2-135m-instruct -m METHOD --full --lr 5e-5 --epochs 3 ...
    rdistill eval --model W/METHOD --bench W/heldout.jsonl --prompt-style trained      (each student)
    rdistill eval --model W/step_by_step ... --prompt-style trained --student-task rationale   (its other task)
    rdistill eval --model hf:offline:smollm2-135m-instruct --bench W/heldout.jsonl --prompt-style both
    rdistill eval --model T --bench W/heldout.jsonl --prompt-style teacher            (the teacher, for scale)

T is the offline Qwen2.5-Coder-1.5B GGUF served by llama-server (see bench/generate_and_filter.py; the response
cache is shared with the other benches). Every student and the untrained baseline run in the same runtime
(transformers, greedy, the same max tokens) on the same 100 held-out problems, which share no question with the
training problems (the synth split is decided by a hash of the question). METHODS below also lists variants
(curriculum_accumulate: `-m curriculum --accumulate --stage-epochs 1,1,2`). Prints a table, then every student's
paired difference from answer_only and cot_sft on the same problems (interval, exact McNemar p), and writes
bench/results/train_methods.json.

    python bench/train_methods.py [--n-train 300] [--heldout 100] [--methods cot_sft,answer_only,...] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "bench")]

from generate_and_filter import served_teacher  # noqa: E402

STUDENT = "offline:smollm2-135m-instruct"
# name in the results -> (method, its extra `rdistill train` arguments)
METHODS = {
    "answer_only": ("answer_only", []),
    "cot_sft": ("cot_sft", []),
    "step_by_step": ("step_by_step", []),
    "curriculum": ("curriculum", []),  # 3 stages by steps, disjoint, 3 epochs each: the same 561 passes as cot_sft
    # every stage keeps the easier ones; epochs 1,1,2 over 96/142/187 traces: 612 passes, about cot_sft's compute
    "curriculum_accumulate": ("curriculum", ["--accumulate", "--stage-epochs", "1,1,2"]),
}
OTHER_TASKS = (("step_by_step", "rationale"),)  # also evaluated through this task, beside the method's own


def rdistill(*args: str) -> float:
    started = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    print("+ rdistill " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "rdistill", *args], check=True, env=env)
    return time.perf_counter() - started


def summary(path: Path) -> dict:
    return json.loads(path.with_name(path.name.removesuffix(".jsonl") + ".summary.json").read_text())


def accuracy_entry(s: dict) -> dict:
    acc = s["accuracy"]["accuracy"]
    return {"value": acc["value"], "ci": acc.get("ci"), "n": acc.get("n"),
            "correct": round(acc["value"] * acc["n"]) if acc["value"] is not None else None,
            "by_steps": s["accuracy"].get("by_steps"), "unanswered": s["accuracy"].get("unanswered"),
            "throughput": s.get("throughput")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, default=300)
    ap.add_argument("--heldout", type=int, default=100)
    ap.add_argument("--steps", default="1-4")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--epochs", default="3")
    ap.add_argument("--lr", default="5e-5")
    ap.add_argument("--max-tokens", default="256")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-train-methods")
    ap.add_argument("--base-url", help="a running llama-server for the teacher (else one is started)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reuse", action="store_true", help="keep methods already trained and evaluated in --work")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_methods.json")
    args = ap.parse_args()
    w = args.work
    w.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))  # torch's intra-op threads in every subprocess
    timings: dict[str, float] = {}
    results: dict[str, dict] = {}

    train, heldout = w / "train.jsonl", w / "heldout.jsonl"
    rdistill("data", "synth", "--task", "arithmetic", "--n", str(args.n_train), "--steps", args.steps,
             "--seed", "0", "--split", "train", "-o", str(train))
    rdistill("data", "synth", "--task", "arithmetic", "--n", str(args.heldout), "--steps", args.steps,
             "--seed", "1", "--split", "test", "-o", str(heldout))
    with served_teacher(args.base_url, threads=args.threads, parallel=4) as teacher:
        timings["generate"] = rdistill("generate", str(train), "-o", str(w / "traces.jsonl"), "--teacher", teacher,
                                       "--strategy", "cot", "--samples", "1", "--max-tokens", args.max_tokens,
                                       "--concurrency", "4", "--no-progress")
        timings["eval_teacher"] = rdistill("eval", "--model", teacher, "--bench", str(heldout), "--prompt-style",
                                           "teacher", "--role", "teacher", "--max-tokens", args.max_tokens,
                                           "--faithfulness-n", "0", "--concurrency", "4",
                                           "-o", str(w / "eval" / "teacher.jsonl"))
        results["teacher"] = accuracy_entry(summary(w / "eval" / "teacher.jsonl"))
    timings["filter"] = rdistill("filter", str(w / "traces.jsonl"), "-o", str(w / "kept.jsonl"), "--check-grounded",
                                 "--report", str(w / "filter.json"))
    kept = sum(1 for _ in (w / "kept.jsonl").open())

    baseline = f"hf:{STUDENT}"
    timings["eval_baseline"] = rdistill("eval", "--model", baseline, "--bench", str(heldout), "--prompt-style", "both",
                                        "--role", "baseline", "--max-tokens", args.max_tokens, "--faithfulness-n", "0",
                                        "-o", str(w / "eval" / "baseline.jsonl"))
    for style in ("plain", "teacher"):
        results[f"baseline[{style}]"] = accuracy_entry(summary(w / "eval" / f"baseline.{style}.jsonl"))

    training: dict[str, dict] = {}
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for method in args.methods.split(","):
        if method not in METHODS:
            ap.error(f"unknown method {method!r}: use some of {', '.join(METHODS)}")
        train_method, extra = METHODS[method]
        out = w / method
        result = w / "eval" / f"{method}.jsonl"
        if args.reuse and (out / "rdistill_train.json").is_file() and result.is_file():
            # an interrupted bench: keep what finished (same work folder, same settings)
            run = json.loads((out / "rdistill_train.json").read_text())
            training[method] = previous.get("train", {}).get(method) or {"seconds": None, "metrics": run.get("metrics")}
            timings.update({k: v for k, v in previous.get("timings_s", {}).items() if k.endswith(f"_{method}")})
            results[method] = accuracy_entry(summary(result))
            continue
        # --reuse: a training run an earlier bench left unfinished continues from its last checkpoint
        resume = ["--resume"] if args.reuse and (out / "checkpoints").is_dir() else []
        timings[f"train_{method}"] = rdistill(
            "train", str(w / "kept.jsonl"), "--student", STUDENT, "-m", train_method, "-o", str(out), "--full", *extra,
            "--lr", args.lr, "--epochs", args.epochs, "--batch-size", "8", "--max-length", "512", "--save-steps", "1000",
            "--seed", "0", *resume)
        run = json.loads((out / "rdistill_train.json").read_text())
        training[method] = {"seconds": timings[f"train_{method}"], "metrics": run.get("metrics")}
        timings[f"eval_{method}"] = rdistill("eval", "--model", str(out), "--bench", str(heldout), "--prompt-style",
                                             "trained", "--role", "student", "--max-tokens", args.max_tokens,
                                             "--faithfulness-n", "0", "-o", str(result))
        results[method] = accuracy_entry(summary(result))
        write_record(args, kept, results, training, timings)
    for method, task in OTHER_TASKS:
        if method in results:
            results[f"{method}[{task}]"] = other_task_entry(args, w, method, task, timings,
                                                            previous.get("timings_s", {}))
            write_record(args, kept, results, training, timings)
    paired = paired_differences(w, results)
    record = write_record(args, kept, results, training, timings, paired)
    print(f"\n{kept} kept traces from {args.n_train} problems; held-out n={args.heldout}")
    print(f"{'model':24} {'accuracy':>9} {'95% CI':>16} {'n':>4}")
    for name, r in record["results"].items():
        lo, hi = r["ci"] or (float("nan"), float("nan"))
        print(f"{name:24} {r['value']:9.3f} [{lo:.3f}, {hi:.3f}] {r['n']:>4}")
    print(f"\npaired on the same {args.heldout} problems (points, 95% interval, exact McNemar p):")
    for name, against in paired.items():
        print(f"{name:24} " + "   ".join(f"vs {ref}: {100 * d['difference']:+.0f} [{100 * d['ci'][0]:+.0f}, "
                                          f"{100 * d['ci'][1]:+.0f}] p={d['p_value']:.2g}" for ref, d in against.items()))
    print(f"wrote {args.out}")


def result_file(w: Path, name: str) -> Path:
    """Where the results of a row of the table are: teacher, baseline[plain], cot_sft, step_by_step[rationale]."""
    stem, _, task = name.removesuffix("]").partition("[")
    return w / "eval" / (f"{stem}.{task}.jsonl" if task else f"{stem}.jsonl")


def paired_differences(w: Path, results: dict) -> dict:
    """Every trained student against answer_only and cot_sft, problem by problem (rdistill's paired statistics)."""
    from rdistill.evaluate.comparison import load_result_set, paired_difference

    sets = {name: load_result_set(result_file(w, name)) for name in results}
    references = [r for r in ("answer_only", "cot_sft") if r in sets]
    return {name: {ref: {k: v for k, v in paired_difference(sets[name], sets[ref]).items() if k != "against"}
                   for ref in references if ref != name}
            for name in sets if not (name == "teacher" or name.startswith("baseline")) and name != "answer_only"}


def other_task_entry(args, w: Path, method: str, task: str, timings: dict, previous_timings: dict) -> dict:
    """The same student asked through another of its tasks (a step-by-step student's rationale: does the multi-task
    student reason its way to the answer when asked to?). Same problems, runtime and decoding as every other row."""
    result = result_file(w, f"{method}[{task}]")
    key = f"eval_{method}_{task}"
    # --reuse keeps a result made after the student it evaluated was trained
    if args.reuse and result.is_file() and (w / method / "rdistill_train.json").stat().st_mtime < result.stat().st_mtime:
        if key in previous_timings:
            timings[key] = previous_timings[key]
    else:
        timings[key] = rdistill(
            "eval", "--model", str(w / method), "--bench", str(w / "heldout.jsonl"), "--prompt-style", "trained",
            "--student-task", task, "--role", "student", "--max-tokens", args.max_tokens, "--faithfulness-n", "0",
            "-o", str(result))
    return accuracy_entry(summary(result))


REUSE_NOTE = ("--reuse: generate, eval_teacher, filter and eval_baseline ran again over a finished trace file and the "
              "response cache, so their seconds are not what a first run costs; train_* and eval_* of each method are "
              "from the run that trained and evaluated it")


def write_record(args, kept: int, results: dict, training: dict, timings: dict, paired: dict | None = None) -> dict:
    record = {"student": STUDENT, "heldout_n": args.heldout, "train_problems": args.n_train, "kept_traces": kept,
              "steps": args.steps, "training": {"full_finetune": True, "lr": args.lr, "epochs": args.epochs,
                                                "batch_size": 8},
              "results": results, **({"paired": paired} if paired else {}), "train": training, "timings_s": timings,
              **({"timings_note": REUSE_NOTE} if args.reuse else {}),
              "host": {"cpus": os.cpu_count(), "machine": platform.machine(), "load_average": os.getloadavg()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
