"""Is a GGUF export the same model? llama.cpp's next-token logits on the export against the student in transformers.

    python bench/export_logits.py RUN_DIR/train/cot_sft --quant f16

Exports the student (`rdistill export --to gguf --quant Q`) into a temporary folder, asks both the export (llama.cpp,
llama-cpp-python) and the student as rdistill loads it (merged, float32) for the next-token logits after the
student's own prompt on a few held-out-style questions, and records the largest absolute difference and whether the
most likely token agrees. Writes bench/results/export_logits-<student>-<quant>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]
RESULTS = ROOT / "bench" / "results"

QUESTIONS = ["Tom has 3 apples and buys 5 more. How many apples does he have?",
             "A box holds 12 pens. Sam buys 4 boxes and gives away 7 pens. How many pens are left?",
             "Mia reads 15 pages a day for 6 days, then 10 more pages. How many pages did she read?"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("student", type=Path)
    ap.add_argument("--quant", default="f16")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import llama_cpp
    import numpy as np
    import torch

    from rdistill.export import export_student
    from rdistill.models import load_causal_lm
    from rdistill.train.prompting import load_prompt_format

    prompt = load_prompt_format(args.student)
    model, tokenizer = load_causal_lm(str(args.student), dtype="float32", device="cpu")
    rows = []
    with tempfile.TemporaryDirectory(prefix="export-logits-") as tmp:
        export_student(args.student, "gguf", Path(tmp) / "out", quant=args.quant)
        gguf = next((Path(tmp) / "out").glob("*.gguf"))
        llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=512, n_threads=2, verbose=False, logits_all=True)
        for question in QUESTIONS:
            encoded = tokenizer.apply_chat_template(prompt.messages(question), add_generation_prompt=True,
                                                    tokenize=True, return_dict=True)["input_ids"]
            ids = list(encoded)
            with torch.no_grad():
                hf = model(torch.tensor([ids])).logits[0, -1].numpy()
            llm.reset()
            llm.eval(ids)
            lc = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            rows.append({"question": question, "max_abs_diff": float(np.abs(hf - lc).max()),
                         "same_argmax": int(hf.argmax()) == int(lc.argmax())})
            print(rows[-1], flush=True)
        llm.close()
    out = args.out or RESULTS / f"export_logits-{args.student.name}-{args.quant}.json"
    out.write_text(json.dumps({"bench": "export_logits", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "student": str(args.student), "quant": args.quant, "rows": rows,
                               "command": " ".join([sys.executable, *sys.argv])}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
