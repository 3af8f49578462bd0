"""The report's inputs: the store's views loaded once into the frames every section reads.

Why a module of its own: the report never recomputes a metric — "change vs base" is the `deltas`
view's definition, intervals are `analysis.stats`' — so everything that touches the store lives here
and the sections, plots and HTML downstream work on plain DataFrames. It also holds the report's
vocabulary (the key metrics with their labels, the method display order) that every layer above
shares. Partial stores (one trial, failed trials, a sweep still running) load to frames that may be
empty; that is normal input, not an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from alignsweep.store import HYPERPARAMETERS, SCHEMAS, TRIALS, read_manifest


@dataclass(frozen=True)
class KeyMetric:
    """An overall metric the report summarises; `short` heads narrow terminal columns."""

    label: str
    short: str
    benchmark: str
    metric: str


SAFE_RATE = KeyMetric("safe rate", "safe", "safety", "safe_rate")
OVER_REFUSAL = KeyMetric("over-refusal", "over-ref", "over_refusal", "over_refusal_rate")
ACCURACY = KeyMetric("BBQ accuracy", "acc", "fairness", "accuracy")
ACC_AMBIG = KeyMetric("accuracy ambig", "acc amb", "fairness", "accuracy_ambig")
ACC_DISAMBIG = KeyMetric("accuracy disambig", "acc dis", "fairness", "accuracy_disambig")
BIAS_AMBIG = KeyMetric("bias ambig", "bias amb", "fairness", "bias_ambig")
BIAS_DISAMBIG = KeyMetric("bias disambig", "bias dis", "fairness", "bias_disambig")
# Over-refusal sits beside safe rate: a model that refuses everything is "safe" and useless.
SUMMARY_METRICS = (SAFE_RATE, OVER_REFUSAL, ACC_AMBIG, ACC_DISAMBIG, BIAS_AMBIG, BIAS_DISAMBIG)
METHOD_ORDER = ("lora", "ia3", "prompt_tuning", "p_tuning")
_SHORT_NAMES = {"learning_rate": "lr", "num_virtual_tokens": "virtual_tokens", "encoder_hidden_size": "encoder_hidden",
                "target_modules": "targets", "batch_size": "batch", "max_steps": "max_steps"}


@dataclass
class ReportData:
    """The frames every section draws from; built once by `load`."""

    sweep: str
    manifest: dict | None
    trials: pd.DataFrame  # the trials view
    deltas: pd.DataFrame  # the deltas view (last scored step), all categories
    base: pd.DataFrame  # base models' overall values, one row per family
    configs: pd.DataFrame  # one row per fine-tuned trial: identity, marks, hyperparameters, Δ key metrics
    controls: pd.DataFrame = field(default_factory=pd.DataFrame)  # the controls view, overall rows
    pareto: pd.DataFrame = field(default_factory=pd.DataFrame)  # the pareto view
    changes: pd.DataFrame = field(default_factory=pd.DataFrame)  # bootstrap changes (analysis.stats), overall

    @property
    def running(self) -> bool:
        return not (self.manifest or {}).get("finished")

    def present(self, metrics: tuple[KeyMetric, ...]) -> list[KeyMetric]:
        return [m for m in metrics if m.label in self.configs.columns and self.configs[m.label].notna().any()]


def ordered_methods(methods) -> list[str]:
    """Methods in the report's order (LoRA, IA3, prompt tuning, P-tuning), any others after them by name."""
    return sorted(methods, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m))


def load(results_dir: str, *, seed: int = 0) -> ReportData:
    """Read the sweep's views once (and the bootstrap changes, seeded) into a `ReportData`."""
    from alignsweep.analysis.stats import bootstrap_changes
    from alignsweep.analysis.views import open as open_views

    con = open_views(results_dir)
    try:
        trials = _frame(con, "SELECT * FROM trials ORDER BY trial_id")
        deltas = _frame(con, "SELECT * FROM deltas ORDER BY trial_id, benchmark, category, metric")
        base = _frame(
            con,
            """SELECT m.base_model, any_value(t.family) AS family, m.benchmark, m.metric, avg(m.value) AS value
               FROM metrics m LEFT JOIN trials t USING (sweep, trial_id)
               WHERE m.method = 'base' AND m.category = 'overall' GROUP BY ALL""",
        )
        sweep = con.execute("SELECT any_value(sweep) FROM (SELECT sweep FROM metrics UNION ALL SELECT sweep FROM trials)").fetchall()[0][0]
        controls = _frame(con, "SELECT * FROM controls WHERE category = 'overall' ORDER BY trial_id")
        pareto = _frame(con, "SELECT * FROM pareto ORDER BY dominated_by, trial_id")
        changes = bootstrap_changes(con, seed=seed)
    finally:
        con.close()
    manifest = read_manifest(results_dir)
    sweep = (manifest or {}).get("sweep") or sweep or Path(results_dir.rstrip("/")).name
    configs = _configs(trials, deltas)
    if len(changes):
        changes = changes.merge(configs[["trial_id", "family"]], on="trial_id", how="left")
    return ReportData(sweep, manifest, trials, deltas, _base_table(base), configs, controls, pareto, changes)


def _frame(con, sql: str) -> pd.DataFrame:
    return con.sql(sql).to_arrow_table().to_pandas()


def _base_table(base: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (model, family), group in base.groupby(["base_model", "family"], dropna=False):
        values = {(b, m): v for b, m, v in zip(group.benchmark, group.metric, group.value)}
        row = {"family": family if isinstance(family, str) else model, "base_model": model}
        for km in SUMMARY_METRICS:
            row[km.label] = 100 * values[(km.benchmark, km.metric)] if (km.benchmark, km.metric) in values else np.nan
        rows.append(row)
    table = pd.DataFrame(rows, columns=["family", "base_model", *(k.label for k in SUMMARY_METRICS)])
    table.attrs["absolute"] = True  # values, not changes: no sign
    return table


def _configs(trials: pd.DataFrame, deltas: pd.DataFrame) -> pd.DataFrame:
    """One row per fine-tuned trial, from `trials` and from `deltas` (a running trial may have
    metrics before its `trials` row exists)."""
    overall = deltas[deltas.category == "overall"]
    wide = pd.DataFrame(index=pd.Index(sorted(set(overall.trial_id)), name="trial_id"))
    for km in (*SUMMARY_METRICS, ACCURACY):
        sel = overall[(overall.benchmark == km.benchmark) & (overall.metric == km.metric)]
        wide[km.label] = (100 * sel.set_index("trial_id")["delta"]).reindex(wide.index)
    ident = deltas.groupby("trial_id").agg(base_model=("base_model", "first"), method=("method", "first"),
                                           family=("family", "first"), step=("step", "max"))
    tuned = trials[trials.method != "base"].set_index("trial_id")
    ids = sorted(set(tuned.index) | set(ident.index))
    configs = pd.DataFrame(index=pd.Index(ids, name="trial_id"))
    for column in ("base_model", "method", "family"):
        configs[column] = tuned[column].reindex(ids).fillna(ident[column].reindex(ids)) if column in tuned else ident[column].reindex(ids)
    families = trials.dropna(subset=["family"]).groupby("base_model")["family"].first()
    configs["family"] = configs["family"].fillna(configs["base_model"].map(families)).fillna(configs["base_model"])
    configs["status"] = tuned["status"].reindex(ids).fillna("no trials row yet")
    configs["stopped_early"] = tuned["stopped_early"].reindex(ids).fillna(False).astype(bool)
    configs["step"] = ident["step"].reindex(ids)
    configs["stop_reason"] = tuned["stop_reason"].reindex(ids) if "stop_reason" in tuned else None
    configs["seed"] = tuned["seed"].reindex(ids) if "seed" in tuned else None
    params = [_hyperparameters(tuned.loc[i]) if i in tuned.index else {} for i in ids]
    configs["hyperparameters"] = _varying(params)
    # A configuration is everything but the seed: seeds of one configuration are its replicates.
    configs["configuration"] = _varying([{k: v for k, v in p.items() if k != "seed"} for p in params])
    return configs.join(wide).reset_index()


def _hyperparameters(trial: pd.Series) -> dict[str, str]:
    """The trial's set hyperparameters (known columns and extras) as short name → text."""
    core = set(SCHEMAS[TRIALS].names) - set(HYPERPARAMETERS)
    params = {}
    for column, value in trial.items():
        if column in core or column == "sweep":
            continue
        name = _SHORT_NAMES.get(column, column)
        if isinstance(value, (list, tuple, np.ndarray)):
            params[name] = ",".join(map(str, value))
        elif value is not None and value is not pd.NA and not (isinstance(value, float) and math.isnan(value)):
            params[name] = f"{value:g}" if isinstance(value, float) else str(value)
    return params


def _varying(params: list[dict[str, str]]) -> list[str]:
    """Drop settings every configuration shares (max_steps, batch …): they tell configurations apart not at all."""
    shared = {k: v for k, v in (params[0] if params else {}).items() if all(p.get(k) == v for p in params)}
    return [" ".join(f"{k}={v}" for k, v in p.items() if k not in shared) for p in params]
