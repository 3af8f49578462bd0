"""The report's output: `write_report` runs load → sections → figures, prints the tables to the
terminal and assembles `report.html` beside the PNGs.

Why a module of its own: formatting is one decision (changes signed with one decimal, correlations
two, absolute values unsigned) applied the same way to the terminal tables and the HTML, and it is
the only place that writes files; `data`, `sections` and `plots` stay free of output concerns.
"""

from __future__ import annotations

import html
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from alignsweep.analysis.report.data import ReportData, load
from alignsweep.analysis.report.plots import save_plot
from alignsweep.analysis.report.sections import Section, build_sections
from alignsweep.errors import InputError


@dataclass
class ReportResult:
    """What `write_report` wrote: report.html and its PNGs."""

    html: Path
    plots: list[Path] = field(default_factory=list)


def write_report(results_dir: str, out_dir: str | None = None, *, console: Console | None = None, seed: int = 0) -> ReportResult:
    """Print the summary tables and write `report.html` with its PNG plots into `out_dir`
    (default `<results_dir>/report`). `seed` fixes the bootstrap, so a report is reproducible."""
    if out_dir is None:
        if "://" in results_dir:
            raise InputError(f"{results_dir}: give --out for a results directory that is not a local path")
        out_dir = str(Path(results_dir) / "report")
    data = load(results_dir, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    console = console or Console(width=None if sys.stdout.isatty() else 160, emoji=False)
    sections = build_sections(data, seed)
    result = ReportResult(out / "report.html")
    for section in sections:
        for name, draw in section.plots:
            result.plots.append(save_plot(out / name, draw))
    _print(console, data, sections)
    result.html.write_text(_html(data, sections))
    console.print(f"report: {result.html} ({len(result.plots)} plots)")
    return result


def _cell(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "–" if math.isnan(value) else f"{value:+.1f}"
    if value is None or value is pd.NA:
        return "–"
    return str(value)


def _formatted(frame: pd.DataFrame) -> pd.DataFrame:
    """Changes signed with one decimal; correlations two decimals; absolute values and variances unsigned."""
    out = frame.copy().astype(object)
    out.columns.name = None  # a pivot's column-axis name would render as an extra, empty-looking header cell
    decimals = frame.attrs.get("decimals", {})  # absolute quantities with their own precision
    for column in frame.columns:
        if column in decimals:
            out[column] = ["–" if pd.isna(v) else f"{v:.{decimals[column]}f}" for v in frame[column]]
        elif column in ("spearman", "ci95_low", "ci95_high"):
            out[column] = ["–" if pd.isna(v) else f"{v:+.2f}" for v in frame[column]]
        elif frame.attrs.get("absolute") or column in ("variance", "std"):
            out[column] = [_cell(v).lstrip("+") for v in frame[column]]
        else:
            out[column] = [_cell(v) for v in frame[column]]
    return out


def _print(console: Console, data: ReportData, sections: list[Section]) -> None:
    for section in sections:
        console.rule(f"[bold]{section.title}")
        if section.text:
            console.print(escape(section.text))  # names like `ensemble[any_unsafe](…)` are text, not markup
        for caption, frame in section.tables:
            if frame.empty:
                console.print(f"{caption}: no data yet")
                continue
            table = Table(title=caption, show_edge=False, header_style="bold")
            shown = _formatted(frame)
            for column in shown.columns:  # headers may wrap at spaces: a wide table squeezes them, never a column away
                wide = column in ("hyperparameters", "error", "note")
                table.add_column(str(column), overflow="fold", ratio=3 if wide else None)
            for row in shown.itertuples(index=False):
                table.add_row(*(escape(str(cell)) for cell in row))
            console.print(table)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f2f2f2}td{text-align:right}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.note{color:#555}.running{background:#fff3cd;padding:.5em 1em;border-radius:4px}"""


def _html(data: ReportData, sections: list[Section]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>alignsweep report: {html.escape(data.sweep)}</title>",
             f"<style>{_CSS}</style></head><body><h1>alignsweep report: {html.escape(data.sweep)}</h1>"]
    if data.running:
        parts.append("<p class='running'>This sweep has not finished: results are partial.</p>")
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f"<p class='note'>{html.escape(section.text)}</p>")
        for caption, frame in section.tables:
            parts.append(f"<h3>{html.escape(caption)}</h3>")
            parts.append("<p class='note'>no data yet</p>" if frame.empty else _formatted(frame).to_html(index=False, escape=True))
        for name, _ in section.plots:
            parts.append(f"<img src='{html.escape(name)}' alt='{html.escape(section.title)}'>")
    parts.append("</body></html>")
    return "\n".join(parts)
