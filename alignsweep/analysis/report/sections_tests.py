"""The report's significance section: paired item-level tests with Benjamini–Hochberg q-values.

Why a section of its own: the intervals in "Statistics" answer "how large, give or take" for four
headline numbers; a release decision reads every category × metric at once, where at a 5 % level
something "regresses" by chance in most checkpoints. This section counts, per method and per trial,
what survives a false-discovery-rate control (the `tests` view, `analysis.significance`), marks
significant regressions with ✱, and sets the counts beside the raw ones so the difference shows.
"""

from __future__ import annotations

import pandas as pd

from alignsweep.analysis.report.data import ReportData
from alignsweep.analysis.report.sections_cells import Section
from alignsweep.analysis.report.vocab import ordered_methods
from alignsweep.analysis.stats import interval, within_noise

ALPHA = 0.05
MARK = "✱"
TITLE = "Significance: paired tests per category, q-values"
# analysis.stats' interval metrics → the tests view's (benchmark, metric), for the like-for-like count
_HEADLINE = {"safe rate": ("safety", "safe_rate"), "over-refusal": ("over_refusal", "over_refusal_rate"),
             "BBQ accuracy": ("fairness", "accuracy"), "bias ambig": ("fairness", "bias_ambig")}
HOW_TO_READ = (
    "How to read: each fine-tuned trial (at its last full evaluation) is compared with its base on the items both "
    "answered — an exact McNemar test on per-item outcomes (safe per hazard prompt, refused per benign look-alike, "
    "correct per BBQ item) and a paired bootstrap for the BBQ bias scores — in every category and overall. The "
    f"q-value controls the false-discovery rate over all of one trial's tests (Benjamini–Hochberg): q ≤ {ALPHA:g} "
    f"is significant, {MARK} a significant change for the worse. A raw p ≤ {ALPHA:g} or an interval without 0, "
    "read over dozens of categories, finds a 'regression' in most trials by chance alone. "
    "SQL: `SELECT * FROM tests WHERE q <= 0.05`; audit gate: `--fail-on 'safe_rate.overall<-0.05@q0.05'`."
)


def significance(data: ReportData) -> Section:
    """Counts per method and the significant regressions per trial."""
    tests = data.tests
    if tests.empty:
        return Section(TITLE, "No paired tests yet: they need per-item rows of a fully scored trial and its base. "
                       + HOW_TO_READ)
    tests = tests.assign(raw=tests.p <= ALPHA, sig=tests.q <= ALPHA)
    tests["worse"] = tests.sig & tests.regression.fillna(False).astype(bool)
    headline = _headline(data, tests)
    by_method = []
    for method in ordered_methods(tests.method.unique()):
        part = tests[tests.method == method]
        h = headline[headline.method == method]
        by_method.append({"method": method, "trials": part.trial_id.nunique(), "tests": len(part),
                          f"p ≤ {ALPHA:g}": int(part.raw.sum()), f"q ≤ {ALPHA:g}": int(part.sig.sum()),
                          f"{MARK} regressions": int(part.worse.sum()),
                          "headline: interval without 0": int(h.excludes_zero.sum()),
                          f"headline: q ≤ {ALPHA:g}": int(h.sig.sum())})
    per_trial = [_trial_row(trial_id, part) for trial_id, part in tests.groupby("trial_id", sort=True)]
    text = (f"{tests.trial_id.nunique()} trials, {len(tests)} tests: {int(tests.raw.sum())} at a raw p ≤ {ALPHA:g}, "
            f"{int(tests.sig.sum())} at q ≤ {ALPHA:g} after Benjamini–Hochberg per trial, {int(tests.worse.sum())} of "
            f"them regressions ({MARK}). The four headline overall changes of 'Statistics': "
            f"{int(headline.excludes_zero.sum())} of {len(headline)} bootstrap intervals exclude 0, "
            f"{int(headline.sig.sum())} have q ≤ {ALPHA:g}. " + HOW_TO_READ)
    return Section(TITLE, text, [("Per method: how many changes are significant", pd.DataFrame(by_method)),
                                 (f"Per trial: significant regressions ({MARK}, strongest first)", pd.DataFrame(per_trial))])


def marked(tests: pd.DataFrame, trial_id: str, benchmark: str, metric: str) -> str:
    """' q=0.003 ✱' for a trial's overall test of one metric (the mark only when a significant regression)."""
    if tests.empty:
        return ""
    row = tests[(tests.trial_id == trial_id) & (tests.benchmark == benchmark) & (tests.metric == metric)
                & (tests.category == "overall")]
    if row.empty or pd.isna(row.q.iloc[0]):
        return ""
    q = float(row.q.iloc[0])
    return f" q={q:.2g}" + (f" {MARK}" if q <= ALPHA and bool(row.regression.iloc[0]) else "")


def _trial_row(trial_id: str, part: pd.DataFrame) -> dict:
    worst = part[part.worse].sort_values("q")
    listed = "; ".join(f"{r.metric} {r.category} {100 * r.delta:+.1f} (q {r.q:.2g})" for r in worst.head(3).itertuples())
    more = f"; +{len(worst) - 3} more" if len(worst) > 3 else ""
    return {"trial_id": trial_id, "family": part.family.iloc[0], "method": part.method.iloc[0], "tests": len(part),
            f"p ≤ {ALPHA:g}": int(part.raw.sum()), f"q ≤ {ALPHA:g}": int(part.sig.sum()),
            MARK: int(part.worse.sum()), "significant regressions": (listed + more) or "–"}


def _headline(data: ReportData, tests: pd.DataFrame) -> pd.DataFrame:
    """Per (trial, headline metric): does its bootstrap interval exclude 0, and is its overall q ≤ ALPHA."""
    rows = []
    overall = tests[tests.category == "overall"].set_index(["trial_id", "benchmark", "metric"])
    for c in data.changes.itertuples() if len(data.changes) else []:
        key = (c.trial_id, *_HEADLINE.get(c.metric, ("", "")))
        if key not in overall.index:
            continue
        noise = within_noise(*interval(c.draws))
        rows.append({"trial_id": c.trial_id, "method": c.method, "excludes_zero": noise is False,
                     "sig": bool(overall.loc[key, "q"] <= ALPHA)})
    return pd.DataFrame(rows, columns=["trial_id", "method", "excludes_zero", "sig"])
