"""Render report blocks as Markdown (plots as files under plots/) and as one self-contained HTML page (plots
embedded as base64 PNG, styles inline, no external asset of any kind)."""

from __future__ import annotations

import base64
import html

from rdistill.report.layout import Block, Bullets, Heading, Image, Paragraph, Table

PLOTS_DIR = "plots"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #eee; }
.table-wrap { overflow-x: auto; margin: .8rem 0; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.accuracy, td.metric { font-variant-numeric: tabular-nums; white-space: nowrap; }
img.plot { display: block; max-width: 100%; margin: .8rem 0 1.6rem; border: 1px solid #eee; }
"""


def to_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            lines.append("|" + "---|" * len(block.headers))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
        elif isinstance(block, Image):
            lines += [f"![{block.alt}]({PLOTS_DIR}/{block.name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_html(blocks: list[Block], title: str = "rdistill evaluation report") -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>"]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            parts.append(_html_table(block))
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode("ascii")
            parts.append(f'<img class="plot" alt="{html.escape(block.alt)}" data-name="{html.escape(block.name)}" '
                         f'src="data:image/png;base64,{data}">')
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _html_table(table: Table) -> str:
    kinds = table.kinds or ["text"] * len(table.headers)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = []
    for row in table.rows:
        cells = "".join(f'<td class="{kind}">{html.escape(str(cell))}</td>' for cell, kind in zip(row, kinds))
        body.append(f"<tr>{cells}</tr>")
    # Wide tables (one column per model) scroll inside their box instead of widening the page.
    return (f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")
