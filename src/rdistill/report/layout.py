"""The report as a list of blocks (headings, paragraphs, tables, images), built once from the report data and
rendered to Markdown and to HTML by render.py, so the two always say the same thing."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rdistill.report import plots
from rdistill.report.cost import describe_host
from rdistill.stats import wilson_interval


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    # Per column: "accuracy" marks cells that must each show a value, its 95% interval and n.
    kinds: list[str] = field(default_factory=list)


@dataclass
class Image:
    name: str  # file name under plots/, also the key of the embedded copy
    alt: str
    png: bytes


Block = Heading | Paragraph | Bullets | Table | Image


def rate_text(entry: dict | None, percent: bool = True, digits: int = 1) -> str:
    """"42.0% [31.5–52.1] n=50": a value with its 95% interval and n; "– (n=0)" when nothing was measured."""
    if not entry or entry.get("value", entry.get("mean")) is None:
        return f"– (n={entry.get('n', 0) if entry else 0})"
    value = entry.get("value", entry.get("mean"))
    lo, hi = entry["ci"]
    if percent:
        return f"{100 * value:.{digits}f}% [{100 * lo:.{digits}f}–{100 * hi:.{digits}f}] n={entry['n']}"
    return f"{value:.2f} [{lo:.2f}–{hi:.2f}] n={entry['n']}"


def difference_text(entry: dict) -> str:
    """"+14.0 [+6.0, +22.0] n=100": a paired difference in percentage points with its 95% interval and n."""
    if entry.get("difference") is None:
        return f"– (n={entry.get('n', 0)})"
    lo, hi = entry["ci"]
    return f"{100 * entry['difference']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] n={entry['n']}"


def cut_off_text(entry: dict | None) -> str:
    """"3/100": answers cut off at max_tokens out of those whose finish is known; "–" when none is (result files
    written before it was recorded), with the unknown ones named when only some are."""
    if not entry or not entry.get("known"):
        return "–"
    unknown = entry["answers"] - entry["known"]
    return f"{entry['cut_off']}/{entry['known']}" + (f" ({unknown} unknown)" if unknown else "")


def _decoding_text(decoding: dict) -> str:
    if not decoding:
        return "not recorded"
    kind = "greedy" if not decoding.get("temperature") else f"temperature {decoding['temperature']}, top_p {decoding.get('top_p')}"
    return (f"{kind}, max_tokens {decoding.get('max_tokens')}, {decoding.get('samples')} sample(s) per problem, "
            f"seed {decoding.get('seed')}")


# Why two runs of one model can differ by a few answers even when greedy: the project measures it with
# bench/eval_noise.py (one model, the same problems, twice), results in bench/results/eval_noise.json.
NOISE_NOTE = ("Run-to-run noise: greedy decoding through llama-server with parallel slots is not bit-for-bit "
              "repeatable (batched kernels round differently with what else is in the batch), so a rerun can flip "
              "a few near-tie answers. rdistill's bench/eval_noise.py evaluates one model twice on the same problems "
              "and counts the answers that differ (bench/results/eval_noise.json in its repository); differences "
              "between models of that size are noise, not a result.")


def prompt_choice_text(choice: dict) -> str:
    """"its prompt was chosen on validation (n=40): plain 20.0%, teacher 30.0%"."""
    tried = ", ".join(f"{style} {100 * (acc or 0):.1f}%" for style, acc in choice.get("candidates", {}).items())
    return f"its prompt was chosen on {choice.get('on', 'other problems')} (n={choice.get('n', '?')}): {tried}"


def build_blocks(data: dict) -> list[Block]:
    blocks: list[Block] = [Heading(1, "rdistill evaluation report"),
                           Paragraph("Every accuracy (a share of problems) is shown with its 95% Wilson interval "
                                     "and n, the number of problems it is computed on; reasoning-quality means "
                                     "other than yes/no shares carry a 95% bootstrap interval. \"cut off at "
                                     "max_tokens\" counts the answers that hit the token limit before ending, "
                                     "usually wrong for that alone (\"–\": the result file does not record it)."),
                           Paragraph(NOISE_NOTE)]
    if data.get("economics"):
        blocks += economics_blocks(data["economics"])
    blocks += limits_blocks(data["benches"])
    blocks += star_blocks(data.get("star") or [])
    for bench in data["benches"]:
        blocks += _bench_blocks(bench, data["quality_metrics"])
    blocks += _cost_blocks(data["cost"])
    if data.get("models"):
        blocks += [Heading(2, "Models"),
                   Table(["name in this report", "role", "model string", "served as"],
                         [[m["name"], m["role"] or "model", m["model"], m["model_id"] or ""] for m in data["models"]])]
    return blocks


def _bench_blocks(bench: dict, metric_names: dict[str, str]) -> list[Block]:
    name = bench["bench"]
    out: list[Block] = [Heading(2, f"{name}"),
                        Paragraph(f"{len(bench['rows'])} result set(s) on the same {bench['n_problems']} problems; "
                                  f"decoding: {_decoding_text(bench['decoding'])}.")]
    if bench["issues"]:
        out.append(Paragraph("Warning: these results were not fully comparable and only the common problems are "
                             "compared:"))
        out.append(Bullets(bench["issues"]))
    else:
        out.append(Paragraph("Fairness checks passed: every result set answered exactly the same problem ids with "
                             "the same decoding."))
    baseline_lines = []
    for model, choice in bench["baselines"].items():
        tried = ", ".join(f"{label}: {100 * (acc or 0):.1f}%" for label, acc in choice["candidates"].items())
        line = f"Baseline {model}: {tried}; compared against: {choice['chosen']}"
        if choice.get("chosen_on"):
            line += f" ({prompt_choice_text(choice['chosen_on'])})"
        baseline_lines.append(line + ".")
    if baseline_lines:
        out.append(Bullets(baseline_lines))

    out.append(Heading(3, "Accuracy"))
    k = max(r["samples"] for r in bench["rows"])
    headers = ["model", "role", "prompt", "maj@%d accuracy" % k if k > 1 else "accuracy"]
    kinds = ["text", "text", "text", "accuracy"]
    if k > 1:
        headers += [f"pass@{k}", "mean per-sample accuracy"]
        kinds += ["accuracy", "accuracy"]
    headers += ["cut off at max_tokens", "no answer found", "failed calls"]
    kinds += ["text", "text", "text"]
    rows = []
    for r in bench["rows"]:
        role = r["role"] + (" (baseline used)" if r["baseline_used"] else "")
        row = [r["model"], role, r["prompt_style"], rate_text(r["accuracy"])]
        if k > 1:
            row += [rate_text(r.get("pass_at_k")), rate_text(r.get("sample_accuracy"))]
        row += [cut_off_text(r.get("truncated")), str(r["unanswered"]), str(r["errors"])]
        rows.append(row)
    out.append(Table(headers, rows, kinds))
    paired_rows = [[r["label"], p["against"], difference_text(p), f"{p['only_first']} / {p['only_second']}",
                    f"{p['p_value']:.3g}"] for r in bench["rows"] for p in r.get("paired", [])]
    if paired_rows:
        out.append(Paragraph("Paired differences on the same problems (student minus reference, in points; "
                             "95% bootstrap interval over problems; problems only the student / only the reference got right; "
                             "exact McNemar p):"))
        out.append(Table(["student", "against", "difference", "only student / only reference", "p"], paired_rows,
                         ["text", "text", "text", "text", "text"]))
    out.append(Image(f"{_slug(name)}-accuracy.png", f"{name}: accuracy with 95% intervals", plots.accuracy_plot(bench)))

    out.append(Heading(3, "Accuracy by number of steps"))
    steps = sorted({p["steps"] for r in bench["rows"] for p in r["by_steps"]})
    if steps:
        step_rows = []
        for s in steps:
            cells = []
            for r in bench["rows"]:
                entry = next((p for p in r["by_steps"] if p["steps"] == s), None)
                cells.append(rate_text(entry))
            step_rows.append([str(s)] + cells)
        out.append(Table(["steps"] + [r["label"] for r in bench["rows"]], step_rows,
                         ["text"] + ["accuracy"] * len(bench["rows"])))
    else:
        out.append(Paragraph("No problem in this benchmark has a known number of steps."))
    out.append(Image(f"{_slug(name)}-steps.png", f"{name}: accuracy by number of steps", plots.steps_plot(bench)))

    out.append(Heading(3, "Reasoning quality"))
    metric_headers = list(metric_names)
    quality_rows = []
    for r in bench["rows"]:
        cells = [rate_text({"value": q["mean"], "ci": q["ci"], "n": q["n"]},
                           percent=m in plots.FRACTION_METRICS) for m, q in
                 ((m, r["quality"][m]) for m in metric_headers)]
        quality_rows.append([r["label"]] + cells)
    out.append(Table(["model"] + metric_headers, quality_rows, ["text"] + ["metric"] * len(metric_headers)))
    out.append(Bullets([f"{m}: {desc}" for m, desc in metric_names.items()]))
    out.append(Image(f"{_slug(name)}-quality.png", f"{name}: reasoning quality",
                     plots.quality_plot(bench, metric_names)))
    return out


def _cost_blocks(cost: dict) -> list[Block]:
    out: list[Block] = [Heading(2, "Cost")]
    out.append(Heading(3, "Teacher calls"))
    if cost["ledgers"]:
        rows = [[r["model"], str(r["calls"]), str(r["cache_hits"]), str(r["prompt_tokens"]),
                 str(r["completion_tokens"]), f"${r['cost_usd']:.4f}" + ("" if r["priced"] else " (unpriced)"),
                 r["source"]] for r in cost["ledgers"]]
        out.append(Table(["model", "calls", "cache hits", "prompt tokens", "completion tokens", "cost", "ledger"], rows))
    else:
        out.append(Paragraph("No teacher ledger was given (pass --ledger FILE, or a run folder holding one)."))
    out.append(Heading(3, "Serving cost per 1K generated tokens"))
    out.append(Paragraph(f"API models: list price for the tokens used in this evaluation. Local models: an assumed "
                         f"machine price of ${cost['hourly_usd']:.2f} per hour (--hourly-usd) divided by the "
                         "throughput measured in this evaluation on the machine named below."))
    rows = []
    for r in cost["serving"]:
        price = f"${r['usd_per_1k_tokens']:.6f}" if r["usd_per_1k_tokens"] else "–"
        tps = f"{r['tokens_per_second']:.1f}" if r["tokens_per_second"] else "–"
        rows.append([r["model"], r["kind"], price, tps, r.get("basis", "")])
    out.append(Table(["model", "kind", "USD / 1K tokens", "tokens/s (measured)", "basis"], rows))
    out.append(Image("serving-cost.png", "serving cost per 1K generated tokens", plots.cost_plot(cost["serving"])))
    host_lines = sorted({describe_host(r["host"]) for r in cost["serving"] if r["local"]})
    if host_lines:
        out.append(Paragraph("Local throughput measured on: " + "; ".join(host_lines) + "."))
    return out


def limits_blocks(benches: list[dict]) -> list[Block]:
    """Where a student stays below the teacher, or below its untrained self, beyond the paired interval: what did
    not distill, stated from the numbers below it (nothing when there are no students)."""
    below_teacher, lost_ground, students = [], [], 0
    for bench in benches:
        roles = {r["label"]: r["role"] for r in bench["rows"]}
        for row in bench["rows"]:
            if row["role"] != "student":
                continue
            students += 1
            for pair in row.get("paired", []):
                if pair.get("difference") is None or pair["ci"][1] >= 0:
                    continue
                line = (f"{row['label']} on {bench['bench']}: {difference_text(pair)} points against "
                        f"{pair['against']} (exact McNemar p={pair['p_value']:.3g})")
                (below_teacher if roles.get(pair["against"]) == "teacher" else lost_ground).append(line)
    if not students:
        return []
    out: list[Block] = [Heading(2, "What did not distill")]
    out.append(Paragraph("A student counts as below another model on a set when the whole 95% interval of their "
                         "paired difference (same problems) lies below zero."))
    out.append(Heading(3, "Below the teacher"))
    out.append(Bullets(below_teacher) if below_teacher else
               Paragraph("On no set does a student stay below the teacher beyond its interval."))
    out.append(Heading(3, "Below its untrained self (the baseline used)"))
    out.append(Bullets(lost_ground) if lost_ground else
               Paragraph("On no set did a student lose ground against the untrained student beyond its interval."))
    return out


def star_blocks(iterations: list[dict]) -> list[Block]:
    """STaR, iteration by iteration: what the student solved on its training problems, what rationalization
    recovered, and what the next student was trained on."""
    if not iterations:
        return []
    rows = []
    for it in iterations:
        if it.get("stopped"):
            rows.append([str(it.get("iteration")), "–", "–", "–", "–",
                         f"converged: iteration {it.get('student_of_iteration')}'s student kept"])
            continue
        n = it.get("problems") or 0
        low, high = wilson_interval(it.get("solved", 0), n) if n else (0.0, 0.0)
        rows.append([str(it["iteration"]), f"{it['solved']}/{n} = {it['solved'] / n:.0%} [{low:.0%}–{high:.0%}]",
                     f"{it['rationales_correct']}/{it['wrong']}", f"{it['kept_solved']} + {it['kept_rationalized']}",
                     str(it.get("train_steps", "–")), ""])
    return [Heading(2, "STaR iterations"),
            Paragraph("Each iteration's student answers the training problems as it is asked at evaluation; the wrong "
                      "ones are rationalized with the gold answer in view; the correct answers and the rationales that "
                      "reach the gold answer pass the filter, and the next student is trained on them from the base "
                      "model. Training accuracy is the share solved before rationalization (95% Wilson interval)."),
            Table(["iteration", "solved (training accuracy)", "rationalized / wrong", "trained on (solved + "
                   "rationalized)", "steps", "note"], rows)]


def usd_text(value: float | None) -> str:
    """"$0.000123" for small sums, "$12.35" for larger ones; "–" when unknown."""
    if value is None:
        return "–"
    return f"${value:.2f}" if abs(value) >= 1 else f"${value:.6f}"


def queries_text(value: float | None) -> str:
    return "never (the student costs as much or more per query)" if value is None else f"{math.ceil(value):,}"


def economics_blocks(e: dict) -> list[Block]:
    """The decision first: what making the students cost, what an answer costs, when a student has paid for itself."""
    out: list[Block] = [Heading(2, "What distilling cost, and what it saves"),
                        Paragraph(f"Compute is priced at an assumed ${e['hourly_usd']:.2f} per hour of this machine "
                                  f"(report.hourly_usd / --hourly-usd); API models at {e['prices_source']}. A "
                                  "student's making includes " + e["making_includes"] + ".")]
    account = e.get("account")
    if account:
        rows = [[kind, f"{v['seconds']:.0f}", usd_text(v["compute_usd"])] for kind, v in account["by_kind"].items()]
        rows.append(["teacher API calls (ledger)", "", usd_text(account["teacher_usd"])])
        rows.append(["making the students (data, generate, filter, train)", f"{account['distillation_seconds']:.0f}",
                     usd_text(account["distillation_usd"])])
        rows.append(["measuring them (eval, report)", f"{account['measurement_seconds']:.0f}",
                     usd_text(account["measurement_usd"])])
        out += [Heading(3, "The run's account"), Table(["stages", "seconds", "cost"], rows)]
    rows = [[a["label"], a["role"] or "model", a["bench"], rate_text(a["accuracy"]), usd_text(a["usd_per_answer"]),
             usd_text(a["usd_per_correct"])] for a in e["answers"]]
    out += [Heading(3, "Cost per answer and per correct answer"),
            Table(["model", "role", "set", "accuracy", "per answer", "per correct answer"], rows,
                  ["text", "text", "text", "accuracy", "text", "text"])]
    if e["break_even"]:
        rows = [[b["student"], b["against"], usd_text(b["making_usd"]), usd_text(b["student_usd_per_query"]),
                 usd_text(b["other_usd_per_query"]), queries_text(b["queries"])] for b in e["break_even"]]
        out += [Heading(3, "Break-even"),
                Paragraph("After how many queries a student, its making included, has cost less than asking the other "
                          "model (per query: the mean over every evaluated answer)."),
                Table(["student", "against", "making", "student per query", "other per query",
                       "break-even (queries)"], rows)]
        for i, (student, curve) in enumerate(e["curves"].items()):
            out.append(Image(f"break-even-{i + 1}.png", f"cumulative cost of {student} against the others",
                             plots.break_even_plot(student, curve)))
    return out


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)
