"""Batched evaluation of a local transformers model vs one problem at a time.

    python bench/eval_batching.py                      # SmolLM2-135M through transformers, 32 problems, 16 vs 1
    python bench/eval_batching.py --n 64 --batch-sizes 1,8,32 --max-tokens 256
    python bench/eval_batching.py --torch-threads 1     # on a small shared machine (see below)

Each batch size gets its own freshly loaded model, warmed up with one short request, then evaluates the same
problems greedily with the cache off; only the answering is timed (model loading is not). Prints a table and
writes JSON to bench/results/eval_batching.json. Greedy answers should not depend on the batch size; the table
shows how many agree with the batch-1 answers (padding can flip a near-tie, so a few may differ).

On a machine whose cores are shared with other work, torch's default of one OpenMP thread per core can make
small matrix products far slower (threads wait on each other while descheduled); `--torch-threads 1` measures
without that effect, and the thread count is recorded with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def run_one(model: str, problems, bench: str, batch_size: int, max_tokens: int) -> dict:
    from rdistill.evaluate.options import EvalOptions
    from rdistill.evaluate.runner import close_client, evaluate, open_model
    from rdistill.teachers.base import Request, SamplingParams

    client = open_model(model, cache=False, batch_size=batch_size)
    try:
        loading = time.perf_counter()
        client.complete(Request.chat("Hello", params=SamplingParams(max_tokens=1)))  # load + warm up, untimed
        loading = time.perf_counter() - loading
        started = time.perf_counter()
        run = evaluate(model, problems, bench=bench, client=client,
                       options=EvalOptions(max_tokens=max_tokens, faithfulness_n=0))
        seconds = time.perf_counter() - started
    finally:
        close_client(client)
    tokens = sum(r.usage.completion_tokens for r in run.results)
    return {"batch_size": batch_size, "seconds": seconds, "load_seconds": loading, "completion_tokens": tokens,
            "tokens_per_second": tokens / seconds, "problems_per_second": len(problems) / seconds,
            "accuracy": run.summary["accuracy"]["accuracy"], "predictions": [r.prediction for r in run.results]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hf:offline:smollm2-135m-instruct")
    parser.add_argument("--bench", default="synth:arithmetic", help="a benchmark name or synth:TASK")
    parser.add_argument("--path", default=None, help="local benchmark file or folder")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--batch-sizes", default="1,16", help="comma-separated; the first is the reference")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=RESULTS / "eval_batching.json")
    args = parser.parse_args()

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    from rdistill.evaluate.problems import load_problems

    problems = load_problems(args.bench, path=args.path, limit=args.n, steps="1-4")
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    runs = [run_one(args.model, problems, args.bench, size, args.max_tokens) for size in sizes]
    reference = runs[0]
    print(f"{args.model} on {len(problems)} {args.bench} problems, greedy, max_tokens {args.max_tokens}, "
          f"{os.cpu_count()} CPUs ({platform.machine()}), {torch.get_num_threads()} torch threads")
    print(f"{'batch':>5} {'seconds':>8} {'tokens':>7} {'tok/s':>7} {'speed-up':>8} {'same answers':>12} {'accuracy':>9}")
    for run in runs:
        run["speedup"] = reference["seconds"] / run["seconds"]
        run["same_as_reference"] = sum(a == b for a, b in zip(run["predictions"], reference["predictions"]))
        print(f"{run['batch_size']:>5} {run['seconds']:>8.1f} {run['completion_tokens']:>7} "
              f"{run['tokens_per_second']:>7.1f} {run['speedup']:>7.2f}x "
              f"{run['same_as_reference']:>5}/{len(problems):<6} {run['accuracy']['value']:>8.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"model": args.model, "bench": args.bench, "n": len(problems), "max_tokens": args.max_tokens,
              "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                       "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg()},
              "runs": [{k: v for k, v in run.items() if k != "predictions"} for run in runs]}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
