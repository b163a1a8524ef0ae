"""Training throughput with packing (no cross-contamination) vs padded batches, on realistic trace lengths.

    python bench/train_packing.py                     # CPU (or the GPU when there is one), SmolLM2-135M shapes
    python bench/train_packing.py --device cuda       # GPU: bf16, reports MFU
    python bench/train_packing.py --layers 8 --steps 3    # a quicker CPU run on fewer real-width layers

The student is a random-init model with SmolLM2-135M's shapes (rdistill.train.random_student; throughput depends on
shapes, not weights). Examples are token rows whose lengths follow distilled-reasoning traces: a log-normal with a
median of ~270 tokens, clipped to 120-700 (chat template and question 50-150 tokens, the rest the reasoning). Both
configurations run the real training path (core.build_trainer: DistillTrainer, the collator, TRL's fused LM head),
with the same number of real tokens per optimizer step on average:
  padded  --batch-size examples per step, each padded to the longest in its batch (random order, as Trainer draws)
  packed  rows of --max-length tokens filled best-fit-decreasing, as many rows as hold the same tokens on average
Tokens/s counts real (non-padding) tokens and excludes the warm-up steps. The packed run is also checked for
cross-contamination: every packed example's log-likelihood must equal the one it gets alone.

Prints a table and writes bench/results/train_packing-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

# Dense bf16 peak of common training GPUs, for MFU; --peak-tflops overrides.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--examples", type=int, default=256, help="examples drawn (the pool batches come from)")
    p.add_argument("--batch-size", type=int, default=8, help="padded: examples per step")
    p.add_argument("--max-length", type=int, default=1024, help="packed row length")
    p.add_argument("--steps", type=int, default=4, help="measured optimizer steps per configuration")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured steps first")
    p.add_argument("--layers", type=int, default=None, help="fewer layers than SmolLM2-135M's 30, same width")
    p.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--peak-tflops", type=float, default=None, help="GPU peak bf16 TFLOPS for MFU")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/train_packing-<device>.json)")
    return p.parse_args()


def trace_lengths(n: int, rng) -> list[tuple[int, int]]:
    """(prompt tokens, total tokens) per example: log-normal reasoning lengths clipped to 120-700 in total."""
    out = []
    for _ in range(n):
        total = int(min(700, max(120, rng.lognormvariate(math.log(270), 0.45))))
        prompt = min(total - 20, rng.randint(50, 150))
        out.append((prompt, total))
    return out


def make_rows(lengths, vocab: int, rng) -> list[dict]:
    rows = []
    for prompt, total in lengths:
        ids = [rng.randrange(3, vocab) for _ in range(total)]
        rows.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    return rows


def run_config(name: str, folder: Path, rows, *, packing: bool, batch_size: int, args, work: Path) -> dict:
    import torch

    from rdistill.models import load_causal_lm
    from rdistill.train.callbacks import MetricsFile, make_reporter
    from rdistill.train.collator import layout_for
    from rdistill.train.core import build_trainer
    from rdistill.train.settings import TrainSettings
    from rdistill.train.tokenize import to_dataset
    from rdistill.train.trainer import TokenMeter

    out = work / name
    out.mkdir(parents=True)
    model, tokenizer = load_causal_lm(str(folder), dtype="float32" if args.full else None, device="cpu",
                                      for_training=True)
    settings = TrainSettings(student=str(folder), output_dir=out, lora=not args.full, batch_size=batch_size,
                             max_length=args.max_length, packing=packing, max_steps=args.warmup + args.steps,
                             warmup_ratio=0.0, seed=args.seed)
    dataset = to_dataset(rows, packing=packing, max_length=args.max_length)
    meter, metrics = TokenMeter(), MetricsFile(out)
    reporter = make_reporter(metrics, meter, stage=1, stages=1, step_offset=0, on_progress=None)
    layout = layout_for(packing, model.config._attn_implementation)
    trainer = build_trainer(model, tokenizer, dataset, settings, output_dir=out / "ck", epochs=1, layout=layout,
                            callbacks=[reporter], token_meter=meter, checkpoints=False)
    real = shaped = 0
    for i, batch in enumerate(trainer.get_train_dataloader()):  # what the measured steps see, padding included
        if i >= args.warmup + args.steps:
            break
        if i >= args.warmup:
            real += int(batch["num_real_tokens"].sum())
            shaped += batch["input_ids"].numel()
    started = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - started
    metrics.close()
    records = metrics.records()[args.warmup:]
    tokens, seconds = sum(r["tokens"] for r in records), sum(r["seconds"] for r in records)
    result = {"config": name, "layout": layout, "rows_per_step": batch_size, "steps": len(records),
              "real_tokens_per_step": tokens / max(len(records), 1), "padding_share": 1 - real / shaped,
              "tokens_per_s": tokens / seconds, "seconds_per_step": seconds / max(len(records), 1),
              "wall_s": wall, "final_loss": records[-1]["loss"] if records else None}
    if packing:
        diff, checked = contamination_check(trainer.model, dataset, tokenizer.pad_token_id)
        result.update(contamination_max_abs_diff=diff, contamination_examples_checked=checked)
    del trainer, model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def contamination_check(model, packed_dataset, pad_id: int, rows: int = 2) -> tuple[float, int]:
    """Largest |log-likelihood packed - alone| over the examples of the first packed rows, and how many."""
    import torch

    from rdistill.train.collator import DistillCollator

    device = next(model.parameters()).device
    model.eval()

    def scores(batch):
        batch = {k: v.to(device) for k, v in batch.items() if k != "num_real_tokens"}
        with torch.no_grad():
            return model(**batch, use_cache=False, fused_lm_head=True).log_probs[0].float()

    worst, checked = 0.0, 0
    for row in (packed_dataset[i] for i in range(min(rows, len(packed_dataset)))):
        together, start = scores(DistillCollator(pad_id, "packed_rows")([row])), 0
        for length in row["seq_lengths"]:
            alone = {k: row[k][start:start + length] for k in ("input_ids", "labels")}
            alone = scores(DistillCollator(pad_id, "packed_rows")([{**alone, "seq_lengths": [length]}]))
            worst = max(worst, abs(together[start:start + length - 1].sum().item() - alone.sum().item()))
            start, checked = start + length, checked + 1
    model.train()
    return worst, checked


def training_flops_per_token(config, lora: bool, mean_context: float) -> float:
    """Matmul FLOPs per trained token: 2N forward, 2N backward to activations, 2N weight gradients (not for frozen
    LoRA bases), plus attention scores and values (4 * layers * width * context forward, twice that backward)."""
    layers, width, vocab = config.num_hidden_layers, config.hidden_size, config.vocab_size
    head_dim = getattr(config, "head_dim", width // config.num_attention_heads)
    kv = config.num_key_value_heads * head_dim
    per_layer = width * width * 2 + width * kv * 2 + 3 * width * config.intermediate_size
    params = layers * per_layer + width * vocab  # block matmuls and the LM head
    passes = 4 if lora else 6
    attention = 3 * 4 * layers * width * mean_context / 2  # causal: half the context on average
    return passes * params + attention


def main():
    args = parse_args()
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # Trainer places the model; hide the GPU to keep it on the CPU
    import random

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    from rdistill.train.quiet import quiet_libraries
    from rdistill.train.random_student import SMOLLM2_135M, build_random_student

    rng = random.Random(args.seed)
    lengths = trace_lengths(args.examples, rng)
    mean_len = sum(t for _, t in lengths) / len(lengths)
    packed_rows = max(1, round(args.batch_size * mean_len / args.max_length))
    shapes = dict(SMOLLM2_135M, **({"num_hidden_layers": args.layers} if args.layers else {}))
    with tempfile.TemporaryDirectory(prefix="rdistill-bench-") as tmp, quiet_libraries():
        work = Path(tmp)
        folder = build_random_student(work / "student", shapes=shapes, seed=args.seed)
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(folder)
        rows = make_rows(lengths, config.vocab_size, rng)
        results = [run_config("padded", folder, rows, packing=False, batch_size=args.batch_size, args=args,
                              work=work),
                   run_config("packed", folder, rows, packing=True, batch_size=packed_rows, args=args, work=work)]
    flops = training_flops_per_token(config, not args.full, mean_len)
    peak = args.peak_tflops
    if device == "cuda" and peak is None:
        name = torch.cuda.get_device_name(0)
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    for r in results:
        r["model_tflops_per_s"] = r["tokens_per_s"] * flops / 1e12
        if device == "cuda" and peak:
            r["mfu"] = r["model_tflops_per_s"] / peak
    speedup = results[1]["tokens_per_s"] / results[0]["tokens_per_s"]
    report = {
        "bench": "train_packing", "device": device,
        "device_name": torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(), "model": f"SmolLM2-135M shapes, {shapes['num_hidden_layers']} layers",
        "fine_tuning": "full" if args.full else "lora", "examples": args.examples, "mean_example_tokens": mean_len,
        "lengths": "lognormal(median 270, sigma 0.45) clipped to 120-700", "max_length": args.max_length,
        "warmup_steps": args.warmup, "peak_tflops": peak, "results": results, "packed_speedup": speedup,
        "versions": {m: __import__(m).__version__ for m in ("torch", "transformers", "trl", "peft")},
    }
    print(f"\ntraining throughput, {report['model']}, {report['fine_tuning']}, {device} "
          f"({report['torch_threads']} threads), examples {mean_len:.0f} tokens on average")
    header = f"{'config':<8} {'layout':<12} {'rows/step':>9} {'real tok/step':>13} {'padding':>8} {'tok/s':>9} " \
             f"{'s/step':>7} {'TFLOP/s':>8}" + (f" {'MFU':>6}" if device == "cuda" else "")
    print(header)
    print("-" * len(header))
    for r in results:
        line = f"{r['config']:<8} {r['layout']:<12} {r['rows_per_step']:>9} {r['real_tokens_per_step']:>13.0f} " \
               f"{r['padding_share']:>8.1%} {r['tokens_per_s']:>9.1f} {r['seconds_per_step']:>7.2f} " \
               f"{r['model_tflops_per_s']:>8.3f}" + (f" {r.get('mfu', float('nan')):>6.1%}" if device == "cuda" else "")
        print(line)
    print(f"packed / padded tokens/s: {speedup:.2f}x; packed vs alone log-likelihood, max |diff| over "
          f"{results[1]['contamination_examples_checked']} examples: {results[1]['contamination_max_abs_diff']:.2e}")
    out = args.out or HERE / "results" / f"train_packing-{device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
