"""The report's inputs: the store's views loaded once into the frames every section reads.

Why a module of its own: the report never recomputes a metric — "change vs base" is the
`deltas_by_step` view's definition, intervals are `analysis.stats`' — so everything that touches the
store lives here and the sections, plots and HTML downstream work on plain DataFrames (their words
come from `vocab`). Partial stores (one trial, failed trials, a sweep still running, an older store
without `trials.ended`) load to frames that may be empty; that is normal input, not an error.

Which step is a trial's result: its last *full* evaluation after step 0 — the largest step with any
metric that is neither a screen (`screen_*`) nor the held-out loss, which the trial logs at every
interval. Every trial, stopped or finished, is fully evaluated at the step it ended, so that is its
last step; in older stores a stopped trial may have none (then it has no result, and says so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from alignsweep.analysis.significance import FULL_EVALUATION
from alignsweep.analysis.report.vocab import (
    ACCURACY,
    STOPPED,
    SUMMARY_METRICS,
    KeyMetric,
    derive_ended,
)
from alignsweep.store import HYPERPARAMETERS, SCHEMAS, TRIALS, read_manifest

#: Safety metrics the judging section reads per trial (safety benchmark, overall).
JUDGING_METRICS = ("safe_rate", "safe_rate_coherent", "incoherent_rate", "judge_disagreement")
# Trial columns that are neither the schema's core nor hyperparameters (`ended`, `stop_step` before
# the schema knows them; `last_step` added by `load`).
_NOT_HYPERPARAMETERS = {"sweep", "ended", "stop_step", "last_step"}
_SHORT_NAMES = {"learning_rate": "lr", "num_virtual_tokens": "virtual_tokens", "encoder_hidden_size": "encoder_hidden",
                "target_modules": "targets", "batch_size": "batch", "max_steps": "max_steps"}
@dataclass
class ReportData:
    """The frames every section draws from; built once by `load`."""

    sweep: str
    manifest: dict | None
    trials: pd.DataFrame  # the trials view, with `ended` (stored or derived) and `last_step`
    deltas: pd.DataFrame  # the deltas view (last scored step per benchmark), all categories
    base: pd.DataFrame  # base models' overall values, one row per family
    configs: pd.DataFrame  # one row per fine-tuned trial: identity, how it ended, hyperparameters, Δ at its last full evaluation
    controls: pd.DataFrame = field(default_factory=pd.DataFrame)  # the controls view, overall rows
    pareto: pd.DataFrame = field(default_factory=pd.DataFrame)  # the pareto view
    changes: pd.DataFrame = field(default_factory=pd.DataFrame)  # bootstrap changes (analysis.stats), overall
    final: pd.DataFrame = field(default_factory=pd.DataFrame)  # deltas_by_step at each trial's last full evaluation, all categories
    by_step: pd.DataFrame = field(default_factory=pd.DataFrame)  # deltas_by_step, overall rows, every step > 0 (screens too)
    evals: pd.DataFrame = field(default_factory=pd.DataFrame)  # per fine-tuned (trial, step): full / screen evaluation there
    heldout: pd.DataFrame = field(default_factory=pd.DataFrame)  # per fine-tuned (trial, step): held-out loss
    tests: pd.DataFrame = field(default_factory=pd.DataFrame)  # the tests view: paired tests with BH q-values
    judge_checks: pd.DataFrame = field(default_factory=pd.DataFrame)  # the judge_checks view: agreement with labels
    judging: pd.DataFrame = field(default_factory=pd.DataFrame)  # per trial at its result step: JUDGING_METRICS overall

    @property
    def running(self) -> bool:
        return not (self.manifest or {}).get("finished")

    def present(self, metrics: tuple[KeyMetric, ...]) -> list[KeyMetric]:
        return [m for m in metrics if m.label in self.configs.columns and self.configs[m.label].notna().any()]


def load(results_dir: str, *, seed: int = 0) -> ReportData:
    """Read the sweep's views once (and the bootstrap changes, seeded) into a `ReportData`."""
    from alignsweep.analysis.stats import bootstrap_changes
    from alignsweep.analysis.views import open as open_views

    con = open_views(results_dir)
    try:
        trials = _frame(con, "SELECT * FROM trials ORDER BY trial_id")
        deltas = _frame(con, "SELECT * FROM deltas ORDER BY trial_id, benchmark, category, metric")
        final = _frame(con, f"""
            WITH last_full AS (
                SELECT sweep, trial_id, max(step) AS step FROM metrics
                WHERE method <> 'base' AND step > 0 AND {FULL_EVALUATION} GROUP BY ALL)
            SELECT d.* FROM deltas_by_step d JOIN last_full USING (sweep, trial_id, step)
            WHERE NOT starts_with(d.benchmark, 'screen_') ORDER BY trial_id, benchmark, category, metric""")
        by_step = _frame(con, """SELECT trial_id, family, method, step, benchmark, metric, value, base_value, delta
                                 FROM deltas_by_step WHERE category = 'overall' AND step > 0 ORDER BY trial_id, step""")
        evals = _frame(con, f"""
            SELECT trial_id, step, bool_or({FULL_EVALUATION}) AS full, bool_or(starts_with(benchmark, 'screen_')) AS screen
            FROM metrics WHERE method <> 'base' GROUP BY ALL ORDER BY trial_id, step""")
        heldout = _frame(con, """SELECT trial_id, step, avg(value) AS heldout_loss FROM metrics
                                 WHERE method <> 'base' AND benchmark = 'utility' AND metric = 'heldout_loss'
                                 GROUP BY ALL ORDER BY trial_id, step""")
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
        tests = _frame(con, "SELECT * FROM tests")
        judge_checks = _frame(con, "SELECT * FROM judge_checks ORDER BY trial_id, judge")
        judging = _frame(con, f"""
            WITH result AS (
                SELECT sweep, trial_id, max(step) AS step FROM metrics
                WHERE {FULL_EVALUATION} AND (method = 'base' OR step > 0) GROUP BY ALL)
            SELECT m.trial_id, m.base_model, m.method, m.step, m.metric, m.value, m.n
            FROM metrics m JOIN result USING (sweep, trial_id, step)
            WHERE m.benchmark = 'safety' AND m.category = 'overall'
              AND m.metric IN ({", ".join(f"'{x}'" for x in JUDGING_METRICS)}) ORDER BY trial_id, metric""")
    finally:
        con.close()
    manifest = read_manifest(results_dir)
    sweep = (manifest or {}).get("sweep") or sweep or Path(results_dir.rstrip("/")).name
    trials = _with_ending(trials)
    configs = _configs(trials, final, deltas, heldout)
    if len(changes):
        changes = changes.merge(configs[["trial_id", "family"]], on="trial_id", how="left")
    return ReportData(sweep, manifest, trials, deltas, _base_table(base), configs, controls, pareto, changes,
                      final, by_step, evals, heldout, tests, judge_checks, judging)


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


def _with_ending(trials: pd.DataFrame) -> pd.DataFrame:
    """`ended` stored or derived (older stores), and `last_step`: `stop_step` where stored, else `steps`."""
    trials = trials.copy()
    trials["ended"] = derive_ended(trials) if len(trials) else pd.Series(dtype=object)
    steps = trials["steps"] if "steps" in trials else pd.Series(np.nan, index=trials.index)
    stop = trials["stop_step"] if "stop_step" in trials else pd.Series(np.nan, index=trials.index)
    trials["last_step"] = pd.to_numeric(stop, errors="coerce").fillna(pd.to_numeric(steps, errors="coerce"))
    return trials


def metric_columns(frame: pd.DataFrame, metrics: tuple[KeyMetric, ...], index: pd.Index) -> pd.DataFrame:
    """Overall deltas as one column per key metric (points, ×100), and `harm:<label>` — how much worse
    than its base each trial got, by the catalog's direction — indexed like `index` (trial ids)."""
    overall = frame[frame.category == "overall"] if "category" in frame else frame
    wide = pd.DataFrame(index=index)
    for km in metrics:
        sel = overall[(overall.benchmark == km.benchmark) & (overall.metric == km.metric)].set_index("trial_id")
        wide[km.label] = (100 * sel["delta"]).reindex(index)
        harm = [100 * km.harm(d, v, b) for d, v, b in zip(sel["delta"], sel["value"], sel["base_value"])]
        wide[f"harm:{km.label}"] = pd.Series(harm, index=sel.index, dtype=float).reindex(index)
    return wide


def _configs(trials: pd.DataFrame, final: pd.DataFrame, deltas: pd.DataFrame, heldout: pd.DataFrame) -> pd.DataFrame:
    """One row per fine-tuned trial, from `trials` and from the deltas (a running trial may have
    metrics before its `trials` row exists); its changes are those of its last full evaluation."""
    wide = metric_columns(final, (*SUMMARY_METRICS, ACCURACY), pd.Index(sorted(set(final.trial_id)), name="trial_id"))
    ident = deltas.groupby("trial_id").agg(base_model=("base_model", "first"), method=("method", "first"),
                                           family=("family", "first"))
    step = final.groupby("trial_id")["step"].max()
    tuned = trials[trials.method != "base"].set_index("trial_id")
    ids = sorted(set(tuned.index) | set(ident.index) | set(step.index))
    configs = pd.DataFrame(index=pd.Index(ids, name="trial_id"))
    for column in ("base_model", "method", "family"):
        configs[column] = tuned[column].reindex(ids).fillna(ident[column].reindex(ids)) if column in tuned else ident[column].reindex(ids)
    families = trials.dropna(subset=["family"]).groupby("base_model")["family"].first()
    configs["family"] = configs["family"].fillna(configs["base_model"].map(families)).fillna(configs["base_model"])
    configs["status"] = tuned["status"].reindex(ids).fillna("no trials row yet")
    configs["ended"] = tuned["ended"].reindex(ids).fillna("running") if "ended" in tuned else "running"
    configs["stopped_early"] = configs["ended"].isin(STOPPED)
    configs["last_step"] = tuned["last_step"].reindex(ids) if "last_step" in tuned else np.nan
    configs["step"] = step.reindex(ids)  # its last full evaluation; NaN: none after step 0
    loss = heldout.merge(configs[["step"]].reset_index(), on=["trial_id", "step"]) if len(heldout) else heldout
    configs["held-out loss"] = loss.set_index("trial_id")["heldout_loss"].reindex(ids) if len(loss) else np.nan
    configs["stop_reason"] = tuned["stop_reason"].reindex(ids) if "stop_reason" in tuned else None
    configs["seed"] = tuned["seed"].reindex(ids) if "seed" in tuned else None
    params = [_hyperparameters(tuned.loc[i]) if i in tuned.index else {} for i in ids]
    configs["hyperparameters"] = _varying(params)
    # A configuration is everything but the seed: seeds of one configuration are its replicates.
    configs["configuration"] = _varying([{k: v for k, v in p.items() if k != "seed"} for p in params])
    return configs.join(wide).reset_index()


def _hyperparameters(trial: pd.Series) -> dict[str, str]:
    """The trial's set hyperparameters (known columns and extras) as short name → text."""
    core = (set(SCHEMAS[TRIALS].names) - set(HYPERPARAMETERS)) | _NOT_HYPERPARAMETERS
    params = {}
    for column, value in trial.items():
        if column in core:
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
