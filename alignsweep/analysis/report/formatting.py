"""How the report writes a number: changes signed with one decimal, correlations two, absolute
values unsigned — one decision applied the same way to the terminal tables, report.html and the
Markdown summary, so the three never disagree on what a cell says."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def cell(value: object) -> str:
    """A change: signed, one decimal; missing values as an en dash."""
    if isinstance(value, (float, np.floating)):
        return "–" if math.isnan(value) else f"{value:+.1f}"
    if value is None or value is pd.NA:
        return "–"
    return str(value)


def formatted(frame: pd.DataFrame) -> pd.DataFrame:
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
            out[column] = [cell(v).lstrip("+") for v in frame[column]]
        else:
            out[column] = [cell(v) for v in frame[column]]
    return out


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of `formatted(frame)`; pipes in cells escaped."""
    shown = formatted(frame)
    def row(values) -> str:
        return "| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ") for v in values) + " |"
    align = ["---" if shown[c].map(lambda v: not _numeric(v)).all() else "---:" for c in shown.columns]
    return "\n".join([row(shown.columns), "| " + " | ".join(align) + " |", *(row(r) for r in shown.itertuples(index=False))])


def _numeric(text: object) -> bool:
    s = str(text).lstrip("+-−").replace(".", "", 1).replace("%", "")
    return s.isdigit() or text == "–"
