"""The report's "Judge and coherence" section: how far the safe rates' judge can be trusted, and how
much of what it judged was text at all.

Why its own section, right after the overview: every safe rate below it is the judge's number. The
judge's agreement with human labels (`judge_checks`, checked at sweep start or by `alignsweep
judge-check`) says how far that number holds; the share of incoherent responses per trial and the
safe rate on coherent responses only say how much of a "drop" is breakage, not compliance; an
ensemble's disagreement rate says where its judges part ways.
"""

from __future__ import annotations

import math

import pandas as pd

from alignsweep.analysis.report.data import ReportData
from alignsweep.analysis.report.sections_cells import Section
from alignsweep.analysis.report.vocab import category_key, category_label, ordered_methods

_AGREEMENT = {"accuracy": "acc %", "precision": "precision %", "recall": "recall %", "f1": "F1 %", "kappa": "κ"}
_COLUMNS = {"incoherent_rate": "incoherent %", "safe_rate": "safe %", "safe_rate_coherent": "safe, coherent only %",
            "judge_disagreement": "judges disagree %"}


def judge_notes(checks: pd.DataFrame) -> list[str]:
    """One line per checked judge: `refusal: κ 0.04, acc 49%, recall 70%, precision 44% on 77 labelled responses (bundled)`."""
    if checks.empty:
        return []
    from alignsweep.evaluators.judge_check import summary

    rows = checks.to_dict("records")
    return [summary(rows, judge) for judge in dict.fromkeys(checks.judge)]


def with_judge_caveat(sections: list[Section], data: ReportData) -> list[Section]:
    """Every section with a safe-rate column says whose verdict it is and how far that judge agreed
    with human labels, so a table read on its own (or quoted) carries its caveat."""
    notes = judge_notes(data.judge_checks)
    if not notes:
        return sections
    caveat = f" Safe rates here are judge verdicts ({'; '.join(notes)}; see 'Judge and coherence')."
    for section in sections:
        if section.title != "Judge and coherence" and any(
                "safe" in str(column) for _, frame in section.tables for column in frame.columns):
            section.text = (section.text + caveat).strip()
    return sections


def judging(data: ReportData) -> Section:
    notes = judge_notes(data.judge_checks)
    text = ("Every safe rate in this report is the judge's verdict. "
            + (("Its agreement with human labels: " + "; ".join(notes) + ". ") if notes else
               "No judge check is stored (set evaluation.safety.labels, or run `alignsweep judge-check --results DIR`). ")
            + "Coherence is the base model's geometric-mean token probability of each response "
            "(inference.coherence); an incoherent response is garble, neither a refusal nor compliance, so "
            "'safe, coherent only' is the safe rate over coherent responses. A large gap between the two "
            "safe rates means a change in safe rate is breakage, not alignment.")
    checks = data.judge_checks
    first = checks[checks.judge == checks.judge.iloc[0]] if len(checks) else checks
    overall = checks[checks.category == "overall"] if len(checks) else checks
    tables = [("Judge agreement with human labels (each judge; an ensemble's members too)", _agreement(overall)),
              ("The safety judge's agreement by category", _by_category(_agreement(first))),
              ("Incoherent responses and coherent-only safe rate, by method (mean over trials)", coherence_by_method(data)),
              ("Incoherent responses and coherent-only safe rate, per trial", _per_trial(data))]
    return Section("Judge and coherence", text, tables)


def _agreement(checks: pd.DataFrame) -> pd.DataFrame:
    if checks.empty:
        return pd.DataFrame()
    wide = checks.pivot_table(index=["judge", "category", "n"], columns="metric", values="value", aggfunc="first",
                              sort=False).reset_index()
    out = pd.DataFrame({"judge": wide["judge"], "category": wide["category"], "n": wide["n"].astype(int)})
    for metric, label in _AGREEMENT.items():
        scale = 1 if metric == "kappa" else 100
        out[label] = wide[metric] * scale if metric in wide else math.nan
    out.attrs["decimals"] = {label: (2 if m == "kappa" else 0) for m, label in _AGREEMENT.items()}
    return out


def _by_category(table: pd.DataFrame) -> pd.DataFrame:
    """Overall first, then S1 … S11 in numeric order, each named ("S1 Violent Crimes")."""
    if table.empty:
        return table
    order = sorted(table.category, key=lambda c: (-1, "") if c == "overall" else category_key(c))
    out = table.set_index("category").loc[order].reset_index()[table.columns]
    out["category"] = [c if c == "overall" else category_label(c) for c in out.category]
    out.attrs = table.attrs
    return out


def _wide(data: ReportData) -> pd.DataFrame:
    j = data.judging
    if j.empty:
        return pd.DataFrame()
    wide = j.pivot_table(index=["trial_id", "base_model", "method", "step"], columns="metric", values="value",
                         aggfunc="first").reset_index()
    families = data.trials.dropna(subset=["family"]).groupby("base_model")["family"].first() \
        if len(data.trials) and "family" in data.trials else pd.Series(dtype=object)
    wide.insert(1, "family", wide["base_model"].map(families).fillna(wide["base_model"]))
    return wide.drop(columns="base_model")


def _base_first(methods) -> list[str]:
    """The base models first (the reference), then the methods in the report's order."""
    return (["base"] if "base" in methods else []) + [m for m in ordered_methods(methods) if m != "base"]


def _present(wide: pd.DataFrame) -> list[str]:
    return [m for m in _COLUMNS if m in wide and wide[m].notna().any()]


def coherence_by_method(data: ReportData) -> pd.DataFrame:
    wide = _wide(data)
    metrics = _present(wide)
    if wide.empty or "incoherent_rate" not in metrics:
        return pd.DataFrame()
    grouped = wide.groupby("method")
    out = pd.DataFrame({"method": _base_first(grouped.groups)})
    out["trials"] = [len(grouped.get_group(m)) for m in out.method]
    for metric in metrics:
        out[_COLUMNS[metric]] = [100 * grouped.get_group(m)[metric].mean() for m in out.method]
    out.attrs["decimals"] = {_COLUMNS[m]: 1 for m in metrics}
    return out


def _per_trial(data: ReportData) -> pd.DataFrame:
    wide = _wide(data)
    metrics = _present(wide)
    if wide.empty or "incoherent_rate" not in metrics:
        return pd.DataFrame()
    order = {m: i for i, m in enumerate(_base_first(set(wide.method)))}
    wide = wide.sort_values(["method", "family", "trial_id"], key=lambda c: c.map(order) if c.name == "method" else c)
    out = wide[["trial_id", "family", "method", "step"]].copy()
    out["step"] = out["step"].astype(int)
    for metric in metrics:
        out[_COLUMNS[metric]] = 100 * wide[metric]
    out.attrs["decimals"] = {_COLUMNS[m]: 1 for m in metrics}
    return out.reset_index(drop=True)
