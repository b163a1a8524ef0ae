"""The filter stage over files: read traces, write the kept ones, the rejected ones and the report."""

from __future__ import annotations

import json
from pathlib import Path

from rdistill.filter.config import FilterConfig
from rdistill.filter.pipeline import judge_traces
from rdistill.filter.report import FilterReport, build_report
from rdistill.jsonl import atomic_writer, load_records, write_records
from rdistill.records import Trace


def filter_file(traces_path: str | Path, output: str | Path, config: FilterConfig, *,
                report_path: str | Path | None = None, rejected_path: str | Path | None = None) -> FilterReport:
    """Filter a traces JSONL into `output`; rejected traces (with their reason) and the report on request.

    The whole input is read first: majority votes and duplicates are per problem, across lines.
    """
    decisions = judge_traces(load_records(traces_path, Trace), config)
    report = build_report(decisions, config)
    write_records(output, (d.trace for d in decisions if d.kept))
    if rejected_path is not None:
        write_records(rejected_path, (d.trace for d in decisions if not d.kept))
    if report_path is not None:
        with atomic_writer(report_path) as fh:
            json.dump(report.to_json_dict(), fh, indent=2)
            fh.write("\n")
    return report
