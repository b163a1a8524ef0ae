"""Reports: evaluation results of several models side by side, as Markdown, a self-contained HTML page and JSON.

    from rdistill.report import build_report
    files = build_report(["results/teacher.jsonl", "results/student.jsonl"], "report/")

Writes REPORT_DIR/report.md (+ plots/*.png), REPORT_DIR/report.html (plots embedded, no external assets) and
REPORT_DIR/report.json (every number shown). The results must be fairly comparable (evaluate/comparison.py) unless
`allow_mismatch` is set.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from rdistill.report.cost import DEFAULT_HOURLY_USD

log = logging.getLogger(__name__)

__all__ = ["ReportFiles", "build_report", "DEFAULT_HOURLY_USD"]


@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    json: Path
    plots: list[Path]
    result_files: list[Path]
    ledger_files: list[Path]


def build_report(inputs: list[str | Path], out_dir: str | Path, *, ledgers: list[str | Path] = (),
                 roles: dict[str, str] | None = None, hourly_usd: float = DEFAULT_HOURLY_USD,
                 prices: str | Path | None = None, allow_mismatch: bool = False, manifest: dict | None = None,
                 compare_with: list[str] = (), order: list[str] = (),
                 names: dict[str, str] | None = None) -> ReportFiles:
    """Build the report from result files and/or run folders. `roles` maps a model (as evaluated) to teacher,
    baseline or student, overriding what was recorded at evaluation time. `manifest` (a run's manifest.json; found
    in a run folder given as input) prices the making of the students; `compare_with` names API models of the
    price table for the break-even; `order` lists benchmarks in the order they are shown (the rest follow
    alphabetically); `names` maps a model string to what the report calls it (the full strings are listed at
    the end)."""
    from rdistill.errors import InputError
    from rdistill.evaluate.comparison import compare, load_result_set
    from rdistill.evaluate.options import ROLES
    from rdistill.jsonl import atomic_writer
    from rdistill.report.data import report_data
    from rdistill.report.inputs import discover, find_manifest, load_ledger
    from rdistill.report.layout import Image, build_blocks
    from rdistill.report.render import PLOTS_DIR, to_html, to_markdown
    from rdistill.teachers.prices import price_table

    roles = roles or {}
    for model, role in roles.items():
        if role not in ROLES:
            raise InputError(f"unknown role {role!r} for {model}: use one of {', '.join(ROLES)}", field="role")
    found = discover(inputs, ledgers)
    sets = [load_result_set(path) for path in found.result_files]
    for s in sets:
        if s.model in roles:
            s.role = roles[s.model]
        s.name = (names or {}).get(s.model)
    unknown_roles = sorted(set(roles) - {s.model for s in sets})
    if unknown_roles:
        raise InputError(f"--role names models that are not in the results: {', '.join(unknown_roles)}", field="role")
    comparisons = compare(sets, allow_mismatch=allow_mismatch)
    rank = {bench: i for i, bench in enumerate(order)}
    comparisons.sort(key=lambda c: (rank.get(c.bench, len(rank)), c.bench))
    if manifest is None:
        manifest = find_manifest(inputs)
    data = report_data(comparisons, ledgers={str(p): load_ledger(p) for p in found.ledger_files},
                       hourly_usd=hourly_usd, prices=price_table(prices), manifest=manifest,
                       compare_with=list(compare_with))
    blocks = build_blocks(data)

    out = Path(out_dir)
    (out / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    plot_paths = []
    for block in blocks:
        if isinstance(block, Image):
            path = out / PLOTS_DIR / block.name
            with atomic_writer(path, "wb") as fh:
                fh.write(block.png)
            plot_paths.append(path)
    files = ReportFiles(out / "report.md", out / "report.html", out / "report.json", plot_paths,
                        found.result_files, found.ledger_files)
    with atomic_writer(files.markdown) as fh:
        fh.write(to_markdown(blocks))
    with atomic_writer(files.html) as fh:
        fh.write(to_html(blocks))
    with atomic_writer(files.json) as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False)
    log.info("report on %d result set(s) written to %s", len(sets), out)
    return files
