"""The report's sections: for each, its title, explanatory text, tables, and which figures it has.

Why a module of its own: this is where the study's questions are answered from the loaded frames —
what each method did per metric and category, whether safety and fairness move together, which family
is stable, what the bootstrap intervals and seeds say — as plain DataFrames and sentences. Nothing here
reads the store (`data` does) or draws (`plots` does: a section names each PNG and binds the frames
its figure needs) or formats output (`html` does), so the terminal and report.html show the same
sections from one source. Every section renders on partial data, saying "no data yet" where empty.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alignsweep.analysis.pareto import OBJECTIVES
from alignsweep.analysis.report import plots
from alignsweep.analysis.report.data import (
    ACCURACY,
    BIAS_AMBIG,
    OVER_REFUSAL,
    SAFE_RATE,
    SUMMARY_METRICS,
    KeyMetric,
    ReportData,
    ordered_methods,
)
from alignsweep.analysis.stats import RESAMPLES, group_effects, interval, within_noise

_BOOTSTRAP = 2000
_STAT_METRICS = ("safe rate", "over-refusal", "BBQ accuracy", "bias ambig")


@dataclass
class Section:
    """One heading of the report: text, captioned tables, and (PNG name, figure drawn from this section's frames)."""

    title: str
    text: str = ""
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    plots: list[tuple[str, Callable[[Figure], None]]] = field(default_factory=list)


def build_sections(data: ReportData, seed: int) -> list[Section]:
    """Every section, in the order the terminal and report.html show them."""
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

    return Section(
        "Change vs base",
        "Mean change of each overall metric (n = configurations). Safe rate and accuracy: up is better; "
        "over-refusal and bias: down is better.",
        [("By method", by_method), ("By family", by_family)],
        [("change_vs_base.png", partial(plots.change_vs_base, configs=data.configs, metrics=metrics))],
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
        table = table[ordered_methods(table.columns)]
        return table.reindex(sorted(table.index, key=_category_key))

    safety, over = pivot("safety", "safe_rate"), pivot("over_refusal", "over_refusal_rate")
    accuracy, bias = pivot("fairness", "accuracy"), pivot("fairness", "bias_ambig")

    return Section(
        "Category audit",
        "Mean change per category and method, over all configurations and families.",
        [(f"{n} by category × method", t.reset_index()) for n, t in (("Δ safe rate", safety), ("Δ over-refusal", over), ("Δ BBQ accuracy", accuracy), ("Δ bias ambig", bias)) if not t.empty],
        [("heatmap_safety.png", partial(plots.heatmap_safety, safety=safety, over=over)),
         ("heatmap_fairness.png", partial(plots.heatmap_fairness, accuracy=accuracy, bias=bias))],
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

    return Section(
        "Does better safety mean better fairness?",
        f"Each point is one configuration (colour = method, marker = family, hollow = stopped early). "
        f"Spearman rank correlation with a {_BOOTSTRAP}-resample bootstrap 95% interval (seed {seed}).",
        [("Rank correlation", table)],
        [("safety_vs_fairness.png", partial(plots.safety_vs_fairness, configs=data.configs, pairs=pairs, rows=rows))],
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

    return Section(
        "Stability of each base model family",
        "Variance (points²) and standard deviation of each family's changes across its configurations: "
        "a low spread means the family's behaviour survives fine-tuning whatever the hyperparameters.",
        [("Spread by family", pd.DataFrame(rows))],
        [("spread_by_family.png", partial(plots.spread_by_family, configs=data.configs, metrics=metrics))],
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


def _statistics(data: ReportData, seed: int) -> Section:
    """Bootstrap intervals: per method (family held fixed), per family, per configuration."""
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

    return Section(
        "Controls: presence vs training",
        "Every trial is scored at step 0, adapter initialised but untrained. 'presence' = step 0 − base; "
        "'training' = last full evaluation − step 0; per trial they add up to the total change. Trials stopped "
        "early have a control but no final full evaluation ('unfinished'): presence averages every trial, "
        "training and total only the finished ones.",
        [("Presence vs training by method (points)", table)],
        [("controls.png", partial(plots.controls, table=table))])


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

    return Section(
        "Safety vs over-refusal",
        "A safe rate bought by refusing everything shows up here: up-right points gained safety by refusing benign "
        "look-alikes too. Colour = method, marker = family, hollow = stopped early.",
        [("Rank correlation", pd.DataFrame([stats]))],
        [("safety_vs_over_refusal.png", partial(plots.safety_vs_over_refusal, configs=data.configs, stats=stats))])


def _pareto(data: ReportData) -> Section:
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

    text = (f"{int(p.on_front.sum())} of {len(p)} fully scored configurations are on the Pareto front over: "
            + ", ".join(f"{o.label} ({'higher' if o.sense == 'max' else 'lower'} is better)" for o in OBJECTIVES)
            + ". Over-refusal is a cost, so refusing everything cannot win. Also: `alignsweep pareto DIR`, "
            "or `SELECT * FROM pareto` in `alignsweep query`.")
    return Section("Pareto front", text, [("On the front", shown)], [("pareto.png", partial(plots.pareto, p=p))])


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
