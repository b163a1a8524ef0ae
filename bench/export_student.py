"""A finished run's student, exported, against the student as the run served it.

    python bench/export_student.py RUN_DIR                       # RUN_DIR/train/cot_sft, the run's held-out set
    python bench/export_student.py RUN_DIR --limit 8 --hf-problems 4 --out /tmp/export.json   # a quick check

1. `rdistill export --to gguf --quant q4_k_m` (seconds, bytes) against the base GGUF + the adapter GGUF that the
   run serves; the same export `--to hf` (seconds, bytes).
2. The run's evaluation set (held-out by default) answered by llama-server twice, the response cache off, same
   prompt (the student's trained one), greedy, the recipe's max_tokens and slots: once the way the run serves the
   student (base GGUF + adapter GGUF), once the q4_k_m export. Accuracy with Wilson intervals, the paired
   difference (export - adapter) with exact McNemar p, and how many texts/answers/verdicts differ. Greedy decoding
   on llama-server is not bit-exact between runs (bench/eval_noise.py measures how much that alone moves).
   `--adapter-from-run` takes the adapter side from the run's own evaluation stage instead (same prompt, decoding
   and serving; recorded as its source).
3. The hf export loaded with plain `AutoModelForCausalLM.from_pretrained` against the adapter over its base through
   peft (not merged), greedy with transformers on the first --hf-problems problems: same texts, same answers.

Writes bench/results/export_student-<run folder name>.json (or --out) with the machine, load averages and command.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]
RESULTS = ROOT / "bench" / "results"

from eval_noise import compare, git_revision, load_average, machine, one_run, pct  # noqa: E402


def timed_export(student: Path, to: str, out: Path, **kwargs) -> dict:
    from rdistill.export import export_student

    started = time.perf_counter()
    done = export_student(student, to, out, **kwargs)
    return {"seconds": round(time.perf_counter() - started, 1), "bytes": sum(f["bytes"] for f in done["files"].values()),
            "files": done["files"]}


def hf_greedy(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    import torch

    tokenizer.padding_side = "left"  # batched greedy: every prompt ends where generation starts
    texts = []
    for start in range(0, len(prompts), 10):
        batch = tokenizer(prompts[start:start + 10], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        texts += tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return texts


def hf_check(student: Path, hf_export: Path, problems, prompt_format, max_new_tokens: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rdistill.answers import extract_answer
    from rdistill.models import load_causal_lm

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(hf_export)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    prompts = [tokenizer.apply_chat_template(prompt_format.messages(p.question), add_generation_prompt=True,
                                             tokenize=False) for p in problems]
    started = time.perf_counter()
    exported = AutoModelForCausalLM.from_pretrained(hf_export, dtype=torch.float32).eval()
    exported_texts = hf_greedy(exported, tokenizer, prompts, max_new_tokens)
    exported_seconds = time.perf_counter() - started
    del exported
    started = time.perf_counter()
    adapter, _ = load_causal_lm(str(student / "adapter"), dtype="float32", device="cpu", for_training=True)
    adapter.eval()  # the PeftModel itself, adapter layers separate from the base (not merged)
    adapter_texts = hf_greedy(adapter, tokenizer, prompts, max_new_tokens)
    adapter_seconds = time.perf_counter() - started
    answers = [(extract_answer(a), extract_answer(e)) for a, e in zip(adapter_texts, exported_texts)]
    return {"n": len(problems), "max_new_tokens": max_new_tokens,
            "same_text": sum(a == e for a, e in zip(adapter_texts, exported_texts)),
            "same_answer": sum(str(a) == str(e) for a, e in answers),
            "seconds": {"hf_export": round(exported_seconds, 1), "peft_adapter": round(adapter_seconds, 1)},
            "differing": [{"id": p.id, "adapter": a_t, "export": e_t}
                          for p, a_t, e_t in zip(problems, adapter_texts, exported_texts) if a_t != e_t]}


def from_run(run_dir: Path, student: str, set_name: str, problems) -> dict:
    """The run's own evaluation of the adapter-served student on the set, in one_run's shape."""
    from rdistill.jsonl import load_records
    from rdistill.records import EvalResult

    folder = run_dir / "eval" / student / set_name
    wanted = {p.id for p in problems}
    results = sorted((r for r in load_records(folder / "trained.jsonl", EvalResult)
                      if r.sample_index == 0 and r.problem_id in wanted), key=lambda r: r.problem_id)
    summary = json.loads((folder / "trained.summary.json").read_text(encoding="utf-8"))
    from rdistill.stats import wilson_interval

    k, n = sum(r.correct for r in results), len(results)
    return {"source": f"{folder}/trained.jsonl (the run's eval stage)", "seconds": None,
            "accuracy": {"value": k / n, "ci": list(wilson_interval(k, n)), "n": n},
            "decoding": summary.get("decoding"), "completion_tokens": sum(r.usage.completion_tokens for r in results),
            "cut_off": sum(1 for r in results if r.truncated), "_results": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--student", default="cot_sft", help="the student's name under RUN_DIR/train (default cot_sft)")
    ap.add_argument("--set", default="heldout", help="the run's evaluation set (default heldout)")
    ap.add_argument("--quant", default="q4_k_m")
    ap.add_argument("--limit", type=int, default=None, help="only the first N problems of the set")
    ap.add_argument("--hf-problems", type=int, default=20)
    ap.add_argument("--adapter-from-run", action="store_true",
                    help="take the adapter-served answers from the run's own evaluation of the student (same prompt, "
                         "greedy, llama-server) instead of evaluating it again")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from rdistill.records import Problem
    from rdistill.jsonl import load_records
    from rdistill.models.lineage import base_gguf_of
    from rdistill.pipeline.recipe import eval_options, load_recipe
    from rdistill.train.prompting import load_prompt_format

    run_dir = args.run_dir.resolve()
    student = run_dir / "train" / args.student
    recipe = load_recipe(run_dir / "recipe.yaml").recipe
    problems = load_records(run_dir / "data" / "eval" / f"{args.set}.jsonl", Problem)[:args.limit]
    options = replace(eval_options(recipe, "student", "trained"), faithfulness_n=0)
    backend_options = dict(recipe.student.backend_options)
    out_path = args.out or RESULTS / f"export_student-{run_dir.name}.json"
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")

    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        print(f"exporting {student} as gguf ({args.quant}) and hf ...", flush=True)
        gguf_export = timed_export(student, "gguf", Path(tmp) / "gguf", quant=args.quant)
        hf_export = timed_export(student, "hf", Path(tmp) / "hf")
        base = base_gguf_of(student)
        adapter_gguf = student / "adapter.gguf"
        if not adapter_gguf.is_file():
            from rdistill.teachers.llamaserver_backend import resolve_target

            resolve_target(str(student))  # exports the adapter GGUF the way serving does
        served_bytes = {"base_gguf": base.stat().st_size, "adapter_gguf": adapter_gguf.stat().st_size}

        runs = {}
        if args.adapter_from_run:
            runs["adapter"] = from_run(run_dir, args.student, args.set, problems)
        for name, model in (("adapter", f"llamaserver:{student}"), ("export", f"llamaserver:{Path(tmp) / 'gguf'}")):
            if name in runs:
                continue
            print(f"evaluating {name}: {model} on {len(problems)} {args.set} problems ...", flush=True)
            runs[name] = one_run(model, problems, options, backend_options)
        diff = compare(runs["adapter"].pop("_results"), runs["export"].pop("_results"))
        print(f"hf export vs peft adapter, greedy on {args.hf_problems} problems ...", flush=True)
        hf = hf_check(student, Path(tmp) / "hf", problems[:args.hf_problems], load_prompt_format(student),
                      options.max_tokens)

    n = len(problems)
    size_ratio = gguf_export["bytes"] / sum(served_bytes.values())
    print(f"\n{'':>8} {'accuracy':>16} {'seconds':>8} {'tokens':>7} {'cut off':>7}")
    for name, r in runs.items():
        seconds = f"{r['seconds']:>8.1f}" if r.get("seconds") is not None else f"{'run':>8}"
        print(f"{name:>8} {pct(r['accuracy']):>16} {seconds} {r['completion_tokens']:>7} {r['cut_off']:>7}")
    p = diff["paired_run2_minus_run1"]
    print(f"export - adapter: {p['difference'] * 100:+.0f} points [{p['ci'][0] * 100:+.0f}, {p['ci'][1] * 100:+.0f}], "
          f"exact McNemar p={p['p_value']:.3g}; differ: texts {diff['texts_differ']}/{n}, answers "
          f"{diff['answers_differ']}/{n}, verdicts {diff['verdicts_differ']}/{n}")
    print(f"{args.quant} file {gguf_export['bytes'] / 1e6:.1f} MB vs base + adapter "
          f"{sum(served_bytes.values()) / 1e6:.1f} MB ({size_ratio:.2f}x); export {gguf_export['seconds']:.0f}s, "
          f"hf export {hf_export['seconds']:.0f}s")
    print(f"hf export vs peft adapter on {hf['n']}: same text {hf['same_text']}, same answer {hf['same_answer']}")

    report = {"bench": "export_student", "date": date, "run_dir": str(run_dir), "student": args.student,
              "set": args.set, "n": n, "quant": args.quant, "decoding": {"temperature": options.temperature,
                                                                        "max_tokens": options.max_tokens},
              "prompt_style": "trained", "backend_options": backend_options,
              "gguf_export": gguf_export, "hf_export": hf_export, "served_bytes": served_bytes,
              "export_over_served_size": round(size_ratio, 3),
              "accuracy": {name: r["accuracy"] for name, r in runs.items()},
              "runs": runs, "export_minus_adapter": p,
              "differ": {k: diff[k] for k in ("texts_differ", "answers_differ", "verdicts_differ")},
              "differing": diff["differing"], "hf_vs_peft": hf,
              "machine": machine(), "load_average_end": load_average(), "git": git_revision(),
              "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
