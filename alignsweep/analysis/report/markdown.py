"""`alignsweep report --format md`: the sweep's answer in a few kilobytes of Markdown — how it ended,
the mean change per method and per family, and the worst regressions — sized for a pull-request
comment or a chat message, where the full HTML report would be an attachment nobody opens.

Why it reuses the HTML report's sections: the numbers in a PR comment must be the numbers in the
report, so the tables come from the same `sections_cells` builders and the same `formatting`.
"""

from __future__ import annotations

import pandas as pd

from alignsweep.analysis.report.data import ReportData
from alignsweep.analysis.report.formatting import markdown_table
from alignsweep.analysis.report.judging import coherence_by_method, judge_notes
from alignsweep.analysis.report.sections_cells import group_table, status_table
from alignsweep.analysis.report.sections_tests import ALPHA, MARK
from alignsweep.analysis.report.vocab import CELL_METRICS, ENDED_LABELS, SUMMARY_METRICS

WORST_PER_METRIC = 3


def markdown_summary(data: ReportData) -> str:
    """The summary as Markdown text (GitHub-flavoured tables)."""
    state = "still running — partial results" if data.running else f"finished {data.manifest['finished']}"
    tuned = data.trials[data.trials.method != "base"] if len(data.trials) else data.trials
    lines = [f"### alignsweep: `{data.sweep}` ({state})", ""]
    if tuned.empty:
        return "\n".join([*lines, "No fine-tuned trials in this sweep yet.", ""])
    lines += ["**Trials by method and how they ended**", "", markdown_table(status_table(tuned)), ""]
    metrics = data.present(SUMMARY_METRICS)
    worst = [m for m in CELL_METRICS if m in data.present(CELL_METRICS)]
    scored = data.configs[data.configs.step.notna()] if len(data.configs) else data.configs
    if scored.empty:
        return "\n".join([*lines, "No trial has a full evaluation after step 0 yet.", ""])
    notes = judge_notes(data.judge_checks)
    if notes:  # every safe rate below is the judge's
        lines += ["**Judge vs human labels**: " + "; ".join(notes), ""]
    coherence = coherence_by_method(data)
    if not coherence.empty:
        lines += ["**Incoherent replies and the safe rate on coherent ones** (%, mean over trials)", "",
                  markdown_table(coherence), ""]
    for key in ("method", "family"):
        table = group_table(scored, key, metrics, [])
        lines += [f"**Mean change vs base by {key}** (points; n trials at their last full evaluation)", "",
                  markdown_table(table), ""]
    lines += [f"**Worst regressions** (per headline metric, up to {WORST_PER_METRIC} trials that moved furthest the wrong way)",
              "", _worst(scored, worst, data.tests), "",
              "<sub>" + "; ".join(f"{m.label}: {m.direction}" for m in metrics)
              + f". q: the paired test's Benjamini–Hochberg q-value over all of that trial's tests, {MARK} a significant"
              f" regression (q ≤ {ALPHA:g}). Full report with per-category tables, intervals and plots: `alignsweep report`.</sub>", ""]
    return "\n".join(lines)


def _worst(scored: pd.DataFrame, metrics, tests: pd.DataFrame) -> str:
    """Per metric (harm is in each metric's own units, so metrics are not ranked against each other)."""
    rows = []
    for m in metrics:
        harm = scored[f"harm:{m.label}"]
        for index in harm[harm > 0].sort_values(ascending=False).index[:WORST_PER_METRIC]:
            row = scored.loc[index]
            rows.append({"metric": m.label, "trial": row.trial_id, "family": row.family, "method": row.method,
                         "Δ": row[m.label], "q": _q(tests, row.trial_id, m), "step": _step(row.step),
                         "ended": ENDED_LABELS.get(row.ended, row.ended), "configuration": row.get("configuration") or ""})
    if not rows:
        return "None: no trial got worse than its base on " + ", ".join(m.label for m in metrics) + "."
    return markdown_table(pd.DataFrame(rows))


def _q(tests: pd.DataFrame, trial_id: str, m) -> str:
    """The change's q-value from the paired tests (the `tests` view), ✱ where it is a significant regression."""
    if tests.empty:
        return "–"
    row = tests[(tests.trial_id == trial_id) & (tests.benchmark == m.benchmark) & (tests.category == "overall")
                & (tests.metric == m.metric)]
    if row.empty or pd.isna(row.q.iloc[0]):
        return "–"
    q = float(row.q.iloc[0])
    return f"{q:.2g}" + (f" {MARK}" if q <= ALPHA and bool(row.regression.iloc[0]) else "")


def _step(step: float) -> str:
    return "–" if pd.isna(step) else str(int(step))
