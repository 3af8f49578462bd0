"""`alignsweep report`: the study's summary of one sweep — what each PEFT method did to safety and
fairness relative to its base model, per hazard and BBQ category, whether the two move together,
and which base model family is stable.

Why it reads only the `deltas` and `trials` views: the store is the one source of truth and the
query layer already defines "change vs base" (each trial's last scored step minus its base model);
the report never recomputes a metric. Partial stores (one trial, failed trials, a sweep still
running) are normal inputs: every section and plot renders, saying "no data yet" where empty.
All changes are shown in points (×100): percentage points for rates, BBQ's ×100 scale for bias.

Modules, each importing only the ones below it: `html` (write_report: terminal tables and
report.html) > `sections` (each section's text and tables) > `plots` (the matplotlib figures) >
`data` (the store's views loaded into frames, and the metric vocabulary).
"""

from alignsweep.analysis.report.data import ReportData, load
from alignsweep.analysis.report.html import ReportResult, write_report
from alignsweep.analysis.report.sections import spearman_ci

__all__ = ["ReportData", "ReportResult", "load", "spearman_ci", "write_report"]
