"""Would stopping generation at the end of the first answer line save time, and would it change any verdict?

    python bench/answer_stop.py RUN_DIR [--out bench/results/answer_stop-NAME.json]

Reads the stored evaluation answers of a run folder (RUN_DIR/eval/MODEL/SET/STYLE.jsonl) and, for each, cuts the text
after the first complete answer line ("The answer is ...", "Answer: ..." followed by a newline), then judges the cut
text with the same checker as evaluation (rdistill.answers.check). It reports how many answers go on after such a
line, the tokens that would be saved (estimated: the answer's completion tokens times the share of its characters
after the cut), and how many verdicts the cut would change. Nothing is generated: this is measured on what the models
already wrote, before building the stop into decoding.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]  # runs from a checkout, no install needed

from rdistill.answers import check  # noqa: E402

# The answer line the evaluation prompts ask for ("The answer is N."), or an "Answer:" line, ended by a newline.
ANSWER_LINE = re.compile(r"(?i)\b(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)[^\n]*\n")


def measure(path: Path) -> dict:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    going_on = changed = 0
    tokens = saved = 0.0
    for r in rows:
        text, used = r["prediction"], r["usage"]["completion_tokens"]
        tokens += used
        cut = ANSWER_LINE.search(text)
        if not cut or cut.end() >= len(text):
            continue
        going_on += 1
        saved += used * (len(text) - cut.end()) / len(text)
        verdict = check(text[:cut.end()], r["answer"], r["answer_type"], r.get("choices"))
        changed += verdict.correct != r["correct"]
    return {"answers": len(rows), "go_on_after_answer_line": going_on, "verdicts_changed": changed,
            "completion_tokens": int(tokens), "tokens_saved_estimate": round(saved)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    files = sorted(args.run_dir.glob("eval/*/*/*.jsonl"))
    if not files:
        sys.exit(f"error: no evaluation answers under {args.run_dir}/eval")
    rows = [{"file": str(p.relative_to(args.run_dir)), **measure(p)} for p in files]
    totals = {k: sum(r[k] for r in rows) for k in ("answers", "go_on_after_answer_line", "verdicts_changed",
                                                    "completion_tokens", "tokens_saved_estimate")}
    width = max(len(r["file"]) for r in rows)
    print(f"{'file':<{width}}  {'answers':>7} {'go on':>6} {'changed':>7} {'tokens':>7} {'saved~':>7}")
    for r in [*rows, {"file": "total", **totals}]:
        print(f"{r['file']:<{width}}  {r['answers']:>7} {r['go_on_after_answer_line']:>6} {r['verdicts_changed']:>7} "
              f"{r['completion_tokens']:>7} {r['tokens_saved_estimate']:>7}")
    share = totals["tokens_saved_estimate"] / totals["completion_tokens"] if totals["completion_tokens"] else 0.0
    print(f"stopping at the first answer line would save ~{100 * share:.1f}% of the generated tokens and change "
          f"{totals['verdicts_changed']} verdict(s)")
    if args.out:
        record = {"bench": "answer_stop", "run_dir": str(args.run_dir.resolve()), "pattern": ANSWER_LINE.pattern,
                  "rows": rows, "totals": totals, "saved_share": round(share, 4)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
