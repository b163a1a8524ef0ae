"""The report's plots as PNG bytes, drawn with matplotlib's Agg backend (no display, no files, no fonts fetched).

Every accuracy is drawn with its 95% interval as an error bar and labelled with its n.
"""

from __future__ import annotations

import io

ROLE_COLOURS = {"teacher": "#4c72b0", "baseline": "#8c8c8c", "student": "#dd8452", "model": "#55a868"}
# Lines and grouped bars need one colour per result set: a baseline has two (plain and teacher prompt).
SERIES_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c",
                  "#ccb974", "#64b5cd")
FRACTION_METRICS = ("arithmetic_validity", "early_answering", "corruption_followed", "coherence")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # headless: never opens a window, whatever the user's default is
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def _errors(entries: list[dict]) -> list[list[float]]:
    """Asymmetric error bars (below, above) for {"value", "ci"} entries, in percent."""
    below = [100 * (e["value"] - e["ci"][0]) if e["value"] is not None else 0 for e in entries]
    above = [100 * (e["ci"][1] - e["value"]) if e["value"] is not None else 0 for e in entries]
    return [below, above]


def accuracy_plot(bench: dict) -> bytes:
    plt = _pyplot()
    rows = bench["rows"]
    fig, ax = plt.subplots(figsize=(7.5, 0.6 * len(rows) + 1.4))
    accs = [r["accuracy"] for r in rows]
    ys = list(range(len(rows)))[::-1]
    values = [100 * (a["value"] or 0) for a in accs]
    ax.barh(ys, values, xerr=_errors(accs), color=[ROLE_COLOURS.get(r["role"], "#55a868") for r in rows],
            capsize=4, edgecolor="black", linewidth=0.5)
    for y, value, a in zip(ys, values, accs):
        right = 100 * a["ci"][1] if a["ci"] else value  # beyond the error bar, so the label never sits on it
        ax.text(right + 1.5, y, f"{value:.1f}%  (n={a['n']})", va="center", fontsize=8)
    ax.set_yticks(ys, [f"{r['label']}\n({r['role']}{', baseline used' if r['baseline_used'] else ''})"
                       for r in rows], fontsize=8)
    ax.set_xlim(0, 118)
    ax.set_xlabel("accuracy (%), bars: 95% Wilson interval")
    ax.set_title(f"{bench['bench']}: accuracy on {bench['n_problems']} problems")
    return _png(fig)


def steps_plot(bench: dict) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    drawn = False
    for k, row in enumerate(bench["rows"]):
        points = [p for p in row["by_steps"] if p["value"] is not None]
        if not points:
            continue
        offset = (k - (len(bench["rows"]) - 1) / 2) * 0.06  # side by side, so intervals do not hide each other
        xs = [p["steps"] + offset for p in points]
        ax.errorbar(xs, [100 * p["value"] for p in points], yerr=_errors(points), marker="o", capsize=3,
                    label=row["label"], color=SERIES_COLOURS[k % len(SERIES_COLOURS)])
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no problem in this benchmark has a known number of steps", ha="center",
                transform=ax.transAxes)
    else:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    ax.set_ylim(-5, 105)
    ax.set_xlabel("reasoning steps the problem needs")
    ax.set_ylabel("accuracy (%), bars: 95% interval")
    ax.set_title(f"{bench['bench']}: accuracy by number of steps")
    return _png(fig)


def quality_plot(bench: dict, metric_names: dict[str, str]) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    rows = bench["rows"]
    width = 0.8 / max(1, len(rows))
    for k, row in enumerate(rows):
        entries = [{"value": row["quality"][m]["mean"], "ci": row["quality"][m]["ci"]} for m in FRACTION_METRICS]
        xs = [i + (k - (len(rows) - 1) / 2) * width for i in range(len(FRACTION_METRICS))]
        ax.bar(xs, [100 * (e["value"] or 0) for e in entries], width, yerr=_errors(entries), capsize=3,
               label=row["label"], color=SERIES_COLOURS[k % len(SERIES_COLOURS)], edgecolor="black", linewidth=0.5)
        for x, e in zip(xs, entries):
            if e["value"] is None:  # unmeasured must not look like 0%
                ax.text(x, 1, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(range(len(FRACTION_METRICS)), [m.replace("_", "\n") for m in FRACTION_METRICS], fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_ylabel("% (bars: 95% interval; missing: not measured)")
    ax.set_title(f"{bench['bench']}: reasoning quality")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    return _png(fig)


def cost_plot(serving: list[dict]) -> bytes:
    plt = _pyplot()
    priced = [r for r in serving if r["usd_per_1k_tokens"]]
    fig, ax = plt.subplots(figsize=(7.5, 0.6 * max(1, len(priced)) + 1.4))
    if priced:
        ys = list(range(len(priced)))[::-1]
        ax.barh(ys, [r["usd_per_1k_tokens"] for r in priced], color=["#dd8452" if r["local"] else "#4c72b0"
                                                                      for r in priced])
        low, high = min(r["usd_per_1k_tokens"] for r in priced), max(r["usd_per_1k_tokens"] for r in priced)
        if high / low > 30:  # API and local prices can be orders of magnitude apart
            ax.set_xscale("log")
            ax.set_xlim(low / 3, high * 30)
        else:
            ax.set_xlim(0, high * 1.4)
        ax.set_yticks(ys, [f"{r['model']}\n({r['kind']})" for r in priced], fontsize=8)
        for y, r in zip(ys, priced):
            ax.text(r["usd_per_1k_tokens"], y, f"  ${r['usd_per_1k_tokens']:.6f}", va="center", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no model could be priced", ha="center", transform=ax.transAxes)
    ax.set_xlabel("USD per 1K generated tokens")
    ax.set_title("serving cost")
    return _png(fig)


def break_even_plot(student: str, curve: dict) -> bytes:
    """Cumulative dollars against queries: the student starts at what making it cost, the others at zero."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    xs = curve["queries"]
    ax.plot(xs, curve["student"], color=ROLE_COLOURS["student"], linewidth=2, label=f"{student} (making included)")
    others = [k for k in curve if k not in ("queries", "student")]
    colours = [c for c in SERIES_COLOURS if c != ROLE_COLOURS["student"]]  # the student's colour is its own
    for colour, name in zip(colours, others):
        ax.plot(xs, curve[name], color=colour, linewidth=1.5, linestyle="--", label=name)
    ax.set_xlabel("queries answered")
    ax.set_ylabel("cumulative cost (USD)")
    ax.set_title("When the student has paid for itself")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    return _png(fig)
