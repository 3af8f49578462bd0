"""The report's output: `write_report` runs load → sections → figures, prints the tables to the
terminal and assembles `report.html`, one file with its plots embedded (data: URIs), so it opens
correctly when moved, mailed or attached alone; the PNGs are written beside it too, for slides.

Why a module of its own: it is the only place that writes the report's files; `data`, `sections`
and `plots` stay free of output concerns, and `formatting` holds the one way a number is written.
"""

from __future__ import annotations

import base64
import html
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from alignsweep.analysis.report.data import ReportData, load
from alignsweep.analysis.report.formatting import formatted
from alignsweep.analysis.report.markdown import markdown_summary
from alignsweep.analysis.report.plots import save_plot
from alignsweep.analysis.report.sections import Section, build_sections
from alignsweep.errors import InputError
from alignsweep.store.fs import write_atomic


@dataclass
class ReportResult:
    """What `write_report` wrote: report.html (self-contained) and the same plots as PNG files."""

    html: Path
    plots: list[Path] = field(default_factory=list)


def write_report(results_dir: str, out_dir: str | None = None, *, console: Console | None = None, seed: int = 0) -> ReportResult:
    """Print the summary tables and write `report.html` with its PNG plots into `out_dir`
    (default `<results_dir>/report`). `seed` fixes the bootstrap, so a report is reproducible."""
    out = _out_dir(results_dir, out_dir)
    data = load(results_dir, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    console = console or Console(width=None if sys.stdout.isatty() else 160, emoji=False)
    sections = build_sections(data, seed)
    result = ReportResult(out / "report.html")
    for section in sections:
        for name, draw in section.plots:
            result.plots.append(save_plot(out / name, draw))
    _print(console, data, sections)
    images = {path.name: path.read_bytes() for path in result.plots}
    _write_text(result.html, _html(data, sections, images))
    console.print(f"report: {result.html} ({len(result.plots)} plots)")
    return result


def write_markdown(results_dir: str, out_dir: str | None = None, *, seed: int = 0) -> tuple[Path, str]:
    """Write `report.md` (the Markdown summary) into `out_dir` and return (its path, its text)."""
    out = _out_dir(results_dir, out_dir)
    text = markdown_summary(load(results_dir, seed=seed))
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / "report.md", text)
    return out / "report.md", text


def _out_dir(results_dir: str, out_dir: str | None) -> Path:
    if out_dir is None:
        if "://" in results_dir:
            raise InputError(f"{results_dir}: give --out for a results directory that is not a local path")
        out_dir = str(Path(results_dir) / "report")
    return Path(out_dir)


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
            shown = formatted(frame)
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


def _html(data: ReportData, sections: list[Section], images: dict[str, bytes]) -> str:
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
            parts.append("<p class='note'>no data yet</p>" if frame.empty else formatted(frame).to_html(index=False, escape=True))
        for name, _ in section.plots:
            uri = "data:image/png;base64," + base64.b64encode(images[name]).decode("ascii")
            parts.append(f"<img src='{uri}' alt='{html.escape(section.title)}' title='{html.escape(name)}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _write_text(path: Path, text: str) -> None:
    """Readers (a browser refreshing, a CI artifact upload) see the old report or the new one, never half."""
    write_atomic(pafs.LocalFileSystem(), str(path.resolve()), lambda out: out.write(text.encode("utf-8")))
