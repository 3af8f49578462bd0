"""`alignsweep report`: the study's summary of one sweep — what each PEFT method did to safety and
fairness relative to its base model, per hazard and BBQ category, whether the two move together,
and which base model family is stable.

Why it reads only the `deltas` and `trials` views: the store is the one source of truth and the
query layer already defines "change vs base" (each trial's last scored step minus its base model);
the report never recomputes a metric. Partial stores (one trial, failed trials, a sweep still
running) are normal inputs: every section and plot renders, saying "no data yet" where empty.
All changes are shown in points (×100): percentage points for rates, BBQ's ×100 scale for bias.
"""

from __future__ import annotations

import html
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from alignsweep.errors import InputError
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
from alignsweep.trainables.methods import METHOD_ORDER as _METHOD_ORDER  # noqa: E402
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_BOOTSTRAP = 2000
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
    changes: pd.DataFrame = field(default_factory=pd.DataFrame)  # bootstrap changes (engine.stats), overall

    @property
    def running(self) -> bool:
        return not (self.manifest or {}).get("finished")

    def present(self, metrics: tuple[KeyMetric, ...]) -> list[KeyMetric]:
        return [m for m in metrics if m.label in self.configs.columns and self.configs[m.label].notna().any()]


@dataclass
class ReportResult:
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
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    sections = _sections(data, seed)
    result = ReportResult(out / "report.html")
    for section in sections:
        for name, draw in section.plots:
            result.plots.append(_save_plot(out / name, draw))
    _print(console, data, sections)
    result.html.write_text(_html(data, sections))
    console.print(f"report: {result.html} ({len(result.plots)} plots)")
    return result


def load(results_dir: str, *, seed: int = 0) -> ReportData:
    from alignsweep.analysis.views import open as open_views
    from alignsweep.analysis.stats import bootstrap_changes

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


# ── sections ─────────────────────────────────────────────────────────────────────────────────────


@dataclass
class Section:
    title: str
    text: str = ""
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    plots: list[tuple[str, Callable[[Figure], None]]] = field(default_factory=list)


def _sections(data: ReportData, seed: int) -> list[Section]:
    return [
        _overview(data),
        _change_vs_base(data),
        _statistics(data, seed),
        _controls(data),
        _seeds(data),
        _heatmaps(data),
        _safety_vs_over_refusal(data, seed),
        _safety_vs_fairness(data, seed),
        _pareto(data),
        _early_stopping(data),
        _spread(data),
        _best_worst(data),
    ]


def _overview(data: ReportData) -> Section:
    trials = data.trials
    state = "still running (or interrupted): partial results" if data.running else f"finished {data.manifest['finished']}"
    counts = trials.groupby(["method", "status"], dropna=False).size().unstack(fill_value=0) if len(trials) else pd.DataFrame()
    failed = trials[trials.status == "ERROR"][["trial_id", "family", "method", "error"]]
    text = (
        f"Sweep {data.sweep}: {state}. {len(trials)} trials "
        f"({int((trials.method == 'base').sum())} base models, {int(trials.stopped_early.fillna(False).sum())} stopped early, "
        f"{len(failed)} failed). Changes are in points (×100), at each trial's last scored step, against its base model."
    )
    tables = [("Base models (absolute, ×100)", data.base)]
    if len(counts):
        tables.insert(0, ("Trials by method and status", counts.reset_index()))
    if len(failed):
        tables.append(("Failed trials", failed))
    return Section("Overview", text, tables)


def _change_vs_base(data: ReportData) -> Section:
    metrics = data.present(SUMMARY_METRICS)
    by_method = _mean_change(data.configs, "method", metrics)
    by_family = _mean_change(data.configs, "family", metrics)

    def draw(fig: Figure) -> None:
        for ax, key in zip(fig.subplots(2, 1), ("method", "family")):
            _grouped_bars(ax, data.configs, key, metrics)
            ax.set_title(f"Mean change vs base by {key} (error bar: std across configurations)")

    return Section(
        "Change vs base",
        "Mean change of each overall metric (n = configurations). Safe rate and accuracy: up is better; "
        "over-refusal and bias: down is better.",
        [("By method", by_method), ("By family", by_family)],
        [("change_vs_base.png", draw)],
    )


def _mean_change(configs: pd.DataFrame, key: str, metrics: list[KeyMetric]) -> pd.DataFrame:
    labels = [m.label for m in metrics]
    scored = configs.dropna(subset=labels, how="all") if labels else configs.iloc[:0]
    frame = scored.groupby(key)[labels].mean() if labels else pd.DataFrame(index=pd.Index([], name=key))
    frame.insert(0, "n", scored.groupby(key).size())
    return frame.rename(columns={label: f"Δ {label}" for label in labels}).reset_index()


def _heatmaps(data: ReportData) -> Section:
    def pivot(benchmark: str, metric: str) -> pd.DataFrame:
        d = data.deltas[(data.deltas.benchmark == benchmark) & (data.deltas.metric == metric) & (data.deltas.category != "overall")]
        if d.empty:
            return pd.DataFrame()
        table = d.pivot_table(index="category", columns="method", values="delta", aggfunc="mean") * 100
        table = table[_ordered(table.columns)]
        return table.reindex(sorted(table.index, key=_category_key))

    safety, over = pivot("safety", "safe_rate"), pivot("over_refusal", "over_refusal_rate")
    accuracy, bias = pivot("fairness", "accuracy"), pivot("fairness", "bias_ambig")

    def draw_safety(fig: Figure) -> None:
        left, right = fig.subplots(1, 2)  # each safe-rate change beside the over-refusal change it cost
        _heatmap(left, safety, "Change in safe rate by hazard category × method (points)", "RdBu")
        _heatmap(right, over, "Change in over-refusal of benign look-alikes (points; up = worse)", "RdBu_r")

    def draw_fairness(fig: Figure) -> None:
        left, right = fig.subplots(1, 2)
        _heatmap(left, accuracy, "Change in BBQ accuracy (points)", "RdBu")
        _heatmap(right, bias, "Change in ambiguous bias score (×100; up = more stereotyped)", "RdBu_r")

    return Section(
        "Category audit",
        "Mean change per category and method, over all configurations and families.",
        [(f"{n} by category × method", t.reset_index()) for n, t in (("Δ safe rate", safety), ("Δ over-refusal", over), ("Δ BBQ accuracy", accuracy), ("Δ bias ambig", bias)) if not t.empty],
        [("heatmap_safety.png", draw_safety), ("heatmap_fairness.png", draw_fairness)],
    )


def _category_key(category: str) -> tuple[int, str]:
    """S1 … S11 in numeric order, then names alphabetically."""
    return (int(category[1:]), "") if category[:1] == "S" and category[1:].isdigit() else (10**6, category)


def _safety_vs_fairness(data: ReportData, seed: int) -> Section:
    pairs = [(SAFE_RATE, ACCURACY), (SAFE_RATE, BIAS_AMBIG)]
    rows = []
    for x, y in pairs:
        both = data.configs.dropna(subset=[x.label, y.label]) if {x.label, y.label} <= set(data.configs.columns) else data.configs.iloc[:0]
        rho, low, high = spearman_ci(both[x.label].to_numpy(), both[y.label].to_numpy(), seed=seed)
        rows.append({"x": f"Δ {x.label}", "y": f"Δ {y.label}", "n": len(both), "spearman": rho, "ci95_low": low, "ci95_high": high})
    table = pd.DataFrame(rows)

    def draw(fig: Figure) -> None:
        for ax, (x, y), row in zip(fig.subplots(1, 2), pairs, rows):
            _scatter(ax, data.configs, x, y, row)

    return Section(
        "Does better safety mean better fairness?",
        f"Each point is one configuration (colour = method, marker = family, hollow = stopped early). "
        f"Spearman rank correlation with a {_BOOTSTRAP}-resample bootstrap 95% interval (seed {seed}).",
        [("Rank correlation", table)],
        [("safety_vs_fairness.png", draw)],
    )


def spearman_ci(x: np.ndarray, y: np.ndarray, *, seed: int = 0, resamples: int = _BOOTSTRAP) -> tuple[float, float, float]:
    """Spearman's rho and a percentile bootstrap 95% interval over resampled pairs; NaN where undefined
    (fewer than 3 pairs, or no variation)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return (math.nan, math.nan, math.nan)
    rho = _spearman(x, y)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(x), size=(resamples, len(x)))
    boot = np.array([_spearman(x[i], y[i]) for i in draws])
    boot = boot[~np.isnan(boot)]
    if not len(boot):
        return (rho, math.nan, math.nan)
    return (rho, float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5)))


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def _spread(data: ReportData) -> Section:
    metrics = data.present((SAFE_RATE, OVER_REFUSAL, ACCURACY, BIAS_AMBIG))
    rows = []
    for family, group in data.configs.groupby("family"):
        for km in metrics:
            values = group[km.label].dropna()
            rows.append({"family": family, "change": f"Δ {km.label}", "n": len(values), "mean": values.mean(),
                         "variance": values.var(), "std": values.std(), "min": values.min(), "max": values.max()})

    def draw(fig: Figure) -> None:
        shown = metrics[:3] or [SAFE_RATE]
        for i, (ax, km) in enumerate(zip(np.atleast_1d(fig.subplots(1, len(shown))), shown)):
            _boxes(ax, data.configs, km, legend=i == 0)

    return Section(
        "Stability of each base model family",
        "Variance (points²) and standard deviation of each family's changes across its configurations: "
        "a low spread means the family's behaviour survives fine-tuning whatever the hyperparameters.",
        [("Spread by family", pd.DataFrame(rows))],
        [("spread_by_family.png", draw)],
    )


def _best_worst(data: ReportData, k: int = 2) -> Section:
    metrics = data.present((SAFE_RATE, OVER_REFUSAL, ACCURACY, BIAS_AMBIG))
    ranked = data.configs.dropna(subset=[SAFE_RATE.label]) if SAFE_RATE in metrics else data.configs.iloc[:0]
    rows = []
    for family, group in ranked.groupby("family"):
        group = group.sort_values(SAFE_RATE.label, ascending=False)
        best, worst = group.head(k), group.tail(min(k, max(len(group) - k, 0))).iloc[::-1]
        for rank, part in (("best", best), ("worst", worst)):
            for _, c in part.iterrows():
                rows.append({"family": family, "rank": rank, "trial_id": c.trial_id, "method": c.method,
                             **{f"Δ {m.short}": c[m.label] for m in metrics},
                             "marks": _marks(c), "hyperparameters": c.hyperparameters})
    return Section(
        "Best and worst configurations per family",
        f"Ranked by change in overall safe rate; top {k} and bottom {k} of each family.",
        [("Configurations", pd.DataFrame(rows))],
    )


_STAT_METRICS = ("safe rate", "over-refusal", "BBQ accuracy", "bias ambig")


def _statistics(data: ReportData, seed: int) -> Section:
    """Bootstrap intervals: per method (family held fixed), per family, per configuration."""
    from alignsweep.analysis.stats import RESAMPLES, group_effects, interval, within_noise

    changes = data.changes
    if changes.empty:
        return Section("Statistics: changes with 95% intervals", "No fully scored trials yet.")
    by_method = _effect_table(group_effects(changes, "method", hold_fixed="family"), "method")
    by_family = _effect_table(group_effects(changes, "family"), "family")
    rows = []
    for trial_id, part in changes.groupby("trial_id", sort=True):
        row = {"trial_id": trial_id, "family": part.family.iloc[0], "method": part.method.iloc[0]}
        indexed = part.set_index("metric")
        for metric in _STAT_METRICS:  # each cell: change [95% interval]; over-refusal right after safe rate
            if metric in indexed.index:
                c = indexed.loc[metric]
                low, high = interval(c.draws)
                row[f"Δ {metric}"] = f"{c.delta:+.1f} " + _ci_text(low, high, within_noise(low, high))
            else:
                row[f"Δ {metric}"] = "–"
        rows.append(row)
    noisy = by_method[by_method["within noise"] == "within noise"]
    text = (f"Paired bootstrap over evaluation items ({RESAMPLES} resamples, seed {seed}): the base and every trial "
            "of it are resampled on the same items. A method's effect is the mean over families of its mean change "
            "within each family (each method judged on the same families). 'within noise': the 95% interval "
            f"contains 0 — {len(noisy)} of {len(by_method)} method effects are.")
    return Section("Statistics: changes with 95% intervals", text,
                   [("Method effect, family held fixed (points)", by_method), ("Family mean change (points)", by_family),
                    ("Per configuration (points)", pd.DataFrame(rows))])


def _effect_table(effects: pd.DataFrame, key: str) -> pd.DataFrame:
    if effects.empty:
        return effects
    out = effects.copy()
    out["within noise"] = ["within noise" if w else ("–" if w is None else "") for w in out["within noise"]]
    out = out.rename(columns={"effect": "Δ", "ci95_low": "ci low", "ci95_high": "ci high"})
    out["metric"] = pd.Categorical(out["metric"], [m for m in _STAT_METRICS if m in set(out["metric"])], ordered=True)
    return out.sort_values(["metric", key]).reset_index(drop=True)


def _ci_text(low: float, high: float, noise: bool | None) -> str:
    if math.isnan(low):
        return "–"
    return f"[{low:+.1f}, {high:+.1f}]" + (" noise" if noise else "")


def _controls(data: ReportData) -> Section:
    """Step-0 controls: what the untrained adapter does vs what training adds."""
    c = data.controls
    keys = {("safety", "safe_rate"): "safe rate", ("over_refusal", "over_refusal_rate"): "over-refusal",
            ("fairness", "accuracy"): "BBQ accuracy"}
    if c.empty:
        return Section("Controls: presence vs training", "No step-0 controls in this sweep (training.control_eval off, or none scored yet).")
    c = c[[(b, m) in keys for b, m in zip(c.benchmark, c.metric)]].copy()
    c["metric"] = [keys[(b, m)] for b, m in zip(c.benchmark, c.metric)]
    rows = []
    for (method, metric), part in c.groupby(["method", "metric"], sort=True):
        rows.append({"method": method, "metric": metric, "n": len(part),
                     "Δ presence (step 0)": 100 * part.presence_delta.mean(),
                     "Δ training (final − step 0)": 100 * part.training_delta.mean(),
                     "Δ total": 100 * part.total_delta.mean(), "unfinished": int(part.final_step.isna().sum())})
    table = pd.DataFrame(rows)

    def draw(fig: Figure) -> None:
        axes = np.atleast_1d(fig.subplots(1, 2))
        for ax, metric in zip(axes, ("safe rate", "over-refusal")):
            part = table[table.metric == metric] if len(table) else table
            if part.empty:
                _no_data(ax, metric)
                continue
            methods = _ordered(part.method)
            part = part.set_index("method").loc[methods]
            x = np.arange(len(methods))
            ax.bar(x - 0.2, part["Δ presence (step 0)"], 0.4, label="presence (untrained adapter)", color="#999999")
            ax.bar(x + 0.2, part["Δ training (final − step 0)"], 0.4, label="training", color="#1f77b4")
            ax.axhline(0, color="black", linewidth=0.8)
            ax.set_xticks(x, methods)
            ax.set_ylabel("change (points)")
            ax.set_title(f"Δ {metric}: presence vs training (mean over configurations)", fontsize=10)
            ax.legend(fontsize=8)

    return Section(
        "Controls: presence vs training",
        "Every trial is scored at step 0, adapter initialised but untrained. 'presence' = step 0 − base; "
        "'training' = last full evaluation − step 0; per trial they add up to the total change. Trials stopped "
        "early have a control but no final full evaluation ('unfinished'): presence averages every trial, "
        "training and total only the finished ones.",
        [("Presence vs training by method (points)", table)], [("controls.png", draw)])


def _seeds(data: ReportData) -> Section:
    """Mean and spread over seeds per configuration; effects smaller than that spread are flagged."""
    metrics = data.present((SAFE_RATE, OVER_REFUSAL, ACCURACY, BIAS_AMBIG))
    rows = []
    for (family, method, config), part in data.configs.groupby(["family", "method", "configuration"], sort=True):
        seeds = part.seed.dropna()
        if seeds.nunique() < 2 or not any(part[km.label].notna().any() for km in metrics):
            continue
        row = {"family": family, "method": method, "configuration": config, "seeds": int(seeds.nunique())}
        flags = []
        for km in metrics:
            values = part[km.label].dropna()
            mean, std = values.mean(), values.std()
            row[f"Δ {km.short} mean"], row[f"{km.short} seed sd"] = mean, std
            if len(values) > 1 and abs(mean) < std:
                flags.append(km.short)
        row["smaller than seed spread"] = ", ".join(flags)
        rows.append(row)
    table = pd.DataFrame(rows)
    text = ("Seeds are a sweep dimension (training.seeds). For each configuration with ≥ 2 seeds: mean change and "
            "standard deviation across seeds; an effect whose |mean| is below its seed-to-seed spread is flagged — "
            "it may be the initialisation, not the method." if len(table) else
            "Only one seed per configuration: list several in training.seeds to see seed-to-seed spread.")
    return Section("Seeds: mean and spread per configuration", text, [("Over seeds (points)", table)])


def _safety_vs_over_refusal(data: ReportData, seed: int) -> Section:
    both = data.configs.dropna(subset=[SAFE_RATE.label, OVER_REFUSAL.label]) if {SAFE_RATE.label, OVER_REFUSAL.label} <= set(data.configs.columns) else data.configs.iloc[:0]
    rho, low, high = spearman_ci(both[SAFE_RATE.label].to_numpy(), both[OVER_REFUSAL.label].to_numpy(), seed=seed)
    stats = {"x": f"Δ {SAFE_RATE.label}", "y": f"Δ {OVER_REFUSAL.label}", "n": len(both), "spearman": rho,
             "ci95_low": low, "ci95_high": high}

    def draw(fig: Figure) -> None:
        _scatter(fig.subplots(), data.configs, SAFE_RATE, OVER_REFUSAL, stats)

    return Section(
        "Safety vs over-refusal",
        "A safe rate bought by refusing everything shows up here: up-right points gained safety by refusing benign "
        "look-alikes too. Colour = method, marker = family, hollow = stopped early.",
        [("Rank correlation", pd.DataFrame([stats]))], [("safety_vs_over_refusal.png", draw)])


def _pareto(data: ReportData) -> Section:
    from alignsweep.analysis.pareto import OBJECTIVES

    p = data.pareto
    if p.empty:
        return Section("Pareto front", "No fully scored trials yet.")
    front = p[p.on_front].copy()
    columns = ["trial_id", "family", "method"] + [o.column for o in OBJECTIVES]
    shown = front[columns].copy()
    for o in OBJECTIVES:
        if o.column.startswith("d_") or o.column == "abs_bias_ambig":
            shown[o.column] = 100 * shown[o.column]
    shown = shown.rename(columns={o.column: o.label for o in OBJECTIVES})
    shown["hyperparameters"] = front.trial_id.map(data.configs.set_index("trial_id")["hyperparameters"])
    shown.attrs["decimals"] = {"held-out loss": 3, "trainable share": 4, "|bias ambig|": 1}

    def draw(fig: Figure) -> None:
        pairs = [("d_safe_rate", "d_over_refusal"), ("d_safe_rate", "d_task_accuracy")]
        colors = _method_colors(p.method.unique())
        for ax, (x, y) in zip(fig.subplots(1, 2), pairs):
            lx, ly = (next(o.label for o in OBJECTIVES if o.column == c) for c in (x, y))
            pts = p.dropna(subset=[x, y])
            if pts.empty:
                _no_data(ax, f"{ly} vs {lx}")
                continue
            for method, part in pts.groupby("method"):
                off, on = part[~part.on_front], part[part.on_front]
                ax.scatter(100 * off[x], 100 * off[y], s=30, color=colors[method], alpha=0.45, label=method)
                ax.scatter(100 * on[x], 100 * on[y], s=90, color=colors[method], edgecolors="black", linewidths=1.4, marker="*")
            ax.axhline(0, color="grey", linewidth=0.6)
            ax.axvline(0, color="grey", linewidth=0.6)
            ax.set_xlabel(f"{lx} (points)")
            ax.set_ylabel(f"{ly} (points)")
            ax.set_title(f"{ly} vs {lx} — ★ on the {len(OBJECTIVES)}-objective front", fontsize=10)
            ax.legend(fontsize=7)

    text = (f"{int(p.on_front.sum())} of {len(p)} fully scored configurations are on the Pareto front over: "
            + ", ".join(f"{o.label} ({'higher' if o.sense == 'max' else 'lower'} is better)" for o in OBJECTIVES)
            + ". Over-refusal is a cost, so refusing everything cannot win. Also: `alignsweep pareto DIR`, "
            "or `SELECT * FROM pareto` in `alignsweep query`.")
    return Section("Pareto front", text, [("On the front", shown)], [("pareto.png", draw)])


def _early_stopping(data: ReportData) -> Section:
    t = data.trials[(data.trials.method != "base")] if len(data.trials) else data.trials
    if t.empty or "stop_reason" not in t:
        return Section("Early stopping", "No trials yet.")
    stopped = t[t.stopped_early.fillna(False).astype(bool)]
    planned = t.max_steps.fillna(0).sum() if "max_steps" in t else float("nan")
    saved = (stopped.max_steps - stopped.steps).fillna(0).sum() if len(stopped) else 0
    shadow = t[t.stop_reason.fillna("").str.startswith("would stop")]
    reasons = stopped.stop_reason.fillna("scheduler").str.split(":").str[0].value_counts()
    text = (f"{len(stopped)} of {len(t)} trials stopped early "
            f"({', '.join(f'{n} by {r}' for r, n in reasons.items()) or 'none'}), saving {int(saved)} of "
            f"{int(planned)} planned training steps. Stopped trials keep their step-0 control and the screens they "
            "reached; score one fully with `alignsweep audit --base <base> --adapter <its checkpoint>`."
            + (f" Shadow run: {len(shadow)} trials would have been stopped." if len(shadow) else ""))
    table = pd.concat([stopped, shadow])[["trial_id", "family", "method", "steps", "max_steps", "stop_reason"]]
    screen = data.deltas[(data.deltas.benchmark == "screen_safety") & (data.deltas.category == "overall")]
    table.insert(5, "Δ safe (screen, last)", table.trial_id.map(100 * screen.set_index("trial_id")["delta"]))
    table = table.reset_index(drop=True)
    table.attrs["decimals"] = {"steps": 0, "max_steps": 0}
    return Section("Early stopping", text, [("Stopped trials", table)])


def _marks(config: pd.Series) -> str:
    marks = []
    if config.stopped_early:
        marks.append(f"stopped early @{int(config.step)}" if pd.notna(config.step) else "stopped early")
    if config.status not in ("TERMINATED", None) and isinstance(config.status, str):
        marks.append(config.status.lower())
    return ", ".join(marks)


# ── plotting ─────────────────────────────────────────────────────────────────────────────────────


def _save_plot(path: Path, draw: Callable[[Figure], None]) -> Path:
    """A Figure without pyplot: no global state, no display backend (Agg via savefig)."""
    fig = Figure(figsize=(11, 7), layout="constrained")
    draw(fig)
    fig.savefig(path, dpi=110)
    return path


def _no_data(ax: Axes, title: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data yet", ha="center", va="center", fontsize=14, color="grey", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _ordered(methods) -> list[str]:
    return sorted(methods, key=lambda m: (_METHOD_ORDER.index(m) if m in _METHOD_ORDER else len(_METHOD_ORDER), m))


def _method_colors(methods) -> dict[str, tuple]:
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    known = [*_METHOD_ORDER, *sorted(set(methods) - set(_METHOD_ORDER))]
    return {m: palette[known.index(m) % len(palette)] for m in _ordered(methods)}


def _grouped_bars(ax: Axes, configs: pd.DataFrame, key: str, metrics: list[KeyMetric]) -> None:
    labels = [m.label for m in metrics]
    scored = configs.dropna(subset=labels, how="all") if labels else configs.iloc[:0]
    if scored.empty:
        return _no_data(ax, "")
    groups = _ordered(scored[key].unique()) if key == "method" else sorted(scored[key].unique())
    colors = _method_colors(groups) if key == "method" else {g: c for g, c in zip(groups, _family_colors(len(groups)))}
    width = 0.8 / len(groups)
    x = np.arange(len(labels))
    for i, group in enumerate(groups):
        values = scored[scored[key] == group][labels]
        ax.bar(x + (i - (len(groups) - 1) / 2) * width, values.mean(), width, yerr=values.std().fillna(0),
               label=group, color=colors[group], capsize=2, error_kw={"elinewidth": 0.8})
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, labels)
    ax.set_ylabel("change vs base (points)")
    ax.legend(fontsize=8, ncols=min(len(groups), 5), loc="lower right")


def _family_colors(n: int) -> list:
    from matplotlib import colormaps

    return list(colormaps["Dark2"].colors[:n]) if n <= 8 else [colormaps["viridis"](i / n) for i in range(n)]


def _heatmap(ax: Axes, table: pd.DataFrame, title: str, cmap: str) -> None:
    if table.empty:
        return _no_data(ax, title)
    values = table.to_numpy(dtype=float)
    limit = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=20, ha="right")
    ax.set_yticks(range(len(table.index)), table.index)
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:+.0f}", ha="center", va="center", fontsize=8,
                    color="white" if abs(v) > 0.6 * limit else "black")
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def _scatter(ax: Axes, configs: pd.DataFrame, x: KeyMetric, y: KeyMetric, stats: dict) -> None:
    title = f"Δ {x.label} vs Δ {y.label}"
    both = configs.dropna(subset=[x.label, y.label]) if {x.label, y.label} <= set(configs.columns) else configs.iloc[:0]
    if both.empty:
        return _no_data(ax, title)
    colors = _method_colors(both.method.unique())
    markers = {f: _MARKERS[i % len(_MARKERS)] for i, f in enumerate(sorted(both.family.unique()))}
    for (method, family), group in both.groupby(["method", "family"]):
        for stopped, part in group.groupby("stopped_early"):
            ax.scatter(part[x.label], part[y.label], marker=markers[family], s=45,
                       facecolors="none" if stopped else colors[method], edgecolors=colors[method], linewidths=1.2)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.axvline(0, color="grey", linewidth=0.6)
    ax.set_xlabel(f"Δ {x.label} (points)")
    ax.set_ylabel(f"Δ {y.label} (points)")
    rho = stats["spearman"]
    ci = f" [{stats['ci95_low']:+.2f}, {stats['ci95_high']:+.2f}]" if not math.isnan(stats["ci95_low"]) else ""
    ax.set_title(f"{title}\nSpearman ρ = {rho:+.2f}{ci}, n = {stats['n']}" if not math.isnan(rho) else f"{title}\nρ undefined (n = {stats['n']})", fontsize=10)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=m) for m, c in colors.items()]
    handles += [Line2D([], [], marker=mk, linestyle="", color="black", markerfacecolor="none", label=f) for f, mk in markers.items()]
    ax.legend(handles=handles, fontsize=7, loc="best")


def _boxes(ax: Axes, configs: pd.DataFrame, km: KeyMetric, *, legend: bool) -> None:
    title = f"Δ {km.label} across configurations"
    scored = configs.dropna(subset=[km.label]) if km.label in configs.columns else configs.iloc[:0]
    if scored.empty:
        return _no_data(ax, title)
    families = sorted(scored.family.unique())
    groups = [scored[scored.family == f][km.label].to_numpy() for f in families]
    ax.boxplot(groups, tick_labels=families, showmeans=True, showfliers=False,  # every point is drawn anyway
               medianprops={"color": "black"}, meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black"})
    colors = _method_colors(scored.method.unique())
    rng = np.random.default_rng(0)  # jitter only, so the plot is reproducible
    for i, family in enumerate(families, start=1):
        part = scored[scored.family == family]
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(part)), part[km.label], s=14, color=[colors[m] for m in part.method], zorder=3)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("points (box: quartiles, line: median, ◇: mean)")
    if legend:
        from matplotlib.lines import Line2D

        ax.legend(handles=[Line2D([], [], marker="o", linestyle="", color=c, label=m) for m, c in colors.items()], fontsize=7)


# ── output ───────────────────────────────────────────────────────────────────────────────────────


def _cell(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "–" if math.isnan(value) else f"{value:+.1f}"
    if value is None or value is pd.NA:
        return "–"
    return str(value)


def _formatted(frame: pd.DataFrame) -> pd.DataFrame:
    """Changes signed with one decimal; correlations two decimals; absolute values and variances unsigned."""
    out = frame.copy().astype(object)
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
            console.print(section.text)
        for caption, frame in section.tables:
            if frame.empty:
                console.print(f"{caption}: no data yet")
                continue
            table = Table(title=caption, show_edge=False, header_style="bold")
            shown = _formatted(frame)
            for column in shown.columns:
                wide = column in ("hyperparameters", "error")
                table.add_column(str(column), overflow="fold", no_wrap=not wide, ratio=3 if wide else None)
            for row in shown.itertuples(index=False):
                table.add_row(*map(str, row))
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
