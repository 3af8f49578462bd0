"""`alignsweep report`: the study's summary of one sweep — what each PEFT method did to safety and
fairness relative to its base model, for every family × method cell, per hazard and BBQ category,
whether the two move together, and which base model family is stable.

Why it reads only the store's views: the store is the one source of truth and the query layer already
defines "change vs base" (`deltas_by_step`: a trial's value minus its base model's); the report never
recomputes a metric. A trial's result is its last full evaluation after step 0 — every trial, stopped
or finished, is fully evaluated where it ended — and since stopped trials end earlier, the report also
compares every trial like for like at the last step all of them reached (on the screen, labelled,
where the sweep did not evaluate fully there). Each mean carries its n, how many of those trials were
stopped and at which step. Partial and older stores (one trial, failed trials, a sweep still running,
no `trials.ended`) are normal inputs: every section and plot renders, saying "no data yet" where empty.
All changes are shown in points (×100): percentage points for rates, BBQ's ×100 scale for bias.

Modules, each importing only the ones below it: `html` (write_report: terminal tables and a
self-contained report.html; write_markdown: report.md) > `markdown` (the PR-comment summary) > `sections` (per-category, correlation, statistics, Pareto, stopping sections) >
`sections_cells` (overview and status, change vs base, like for like, the family × method grid; the
`Section` type) > `plots` (the matplotlib figures) > `data` (the store's views loaded into frames) >
`vocab` (metric labels and directions from the catalog, how trials end, hazard names); `formatting`
(how a number is written, for every output).
"""

from alignsweep.analysis.report.data import ReportData, load
from alignsweep.analysis.report.html import ReportResult, write_markdown, write_report
from alignsweep.analysis.report.sections import spearman_ci

__all__ = ["ReportData", "ReportResult", "load", "spearman_ci", "write_markdown", "write_report"]
