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
from functools import partial

import numpy as np
import pandas as pd

from alignsweep.analysis.pareto import OBJECTIVES
from alignsweep.analysis.report import plots
from alignsweep.analysis.report.data import ReportData
from alignsweep.analysis.report.judging import judging, with_judge_caveat
from alignsweep.analysis.report.sections_tests import marked, significance
from alignsweep.analysis.report.sections_cells import (
    Section,
    cells,
    change_vs_base,
    early_stopping,
    like_for_like,
    overview,
)
from alignsweep.analysis.report.vocab import (
    ACCURACY,
    BIAS_AMBIG,
    CELL_METRICS,
    OVER_REFUSAL,
    SAFE_RATE,
    category_key,
    category_label,
    ordered_methods,
    varies,
)
from alignsweep.analysis.stats import RESAMPLES, group_effects, interval, within_noise

_BOOTSTRAP = 2000
# analysis.stats' item-metric names, and the catalog's key metric each one recomputes
_STAT_METRICS = {"safe rate": SAFE_RATE, "over-refusal": OVER_REFUSAL, "BBQ accuracy": ACCURACY, "bias ambig": BIAS_AMBIG}

__all__ = ["Section", "build_sections", "spearman_ci"]


def build_sections(data: ReportData, seed: int) -> list[Section]:
    """Every section, in the order the terminal and report.html show them."""
    return with_judge_caveat([
        overview(data),
        judging(data),  # every safe rate below is the judge's: how far it holds, and what was text at all
        change_vs_base(data),
        like_for_like(data),
        cells(data),
        _statistics(data, seed),
        significance(data),
        _controls(data),
        _seeds(data),
        _heatmaps(data),
        _safety_vs_over_refusal(data, seed),
        _safety_vs_fairness(data, seed),
        _pareto(data),
        early_stopping(data),
        _spread(data),
        _best_worst(data),
    ], data)


def _heatmaps(data: ReportData) -> Section:
    final = data.final

    def pivot(benchmark: str, metric: str) -> pd.DataFrame:
        d = final[(final.benchmark == benchmark) & (final.metric == metric) & (final.category != "overall")] if len(final) else final
        if d.empty:
            return pd.DataFrame()
        table = d.pivot_table(index="category", columns="method", values="delta", aggfunc="mean") * 100
        table = table[ordered_methods(table.columns)]
        table = table.reindex(sorted(table.index, key=category_key))
        return table.rename(index=category_label).rename_axis("category")

    safety, over = pivot("safety", "safe_rate"), pivot("over_refusal", "over_refusal_rate")
    accuracy, bias = pivot("fairness", "accuracy"), pivot("fairness", "bias_ambig")

    return Section(
        "Category audit",
        "Mean change per category and method at each trial's last full evaluation, over all configurations and "
        "families. Hazard categories are named by the taxonomy (S1–S11; a Llama Guard 3 judge's 14 codes map onto them, "
        "Defamation and Code Interpreter Abuse as categories of their own).",
        [(f"Δ {m.label} by category × method", t.reset_index())
         for m, t in zip(CELL_METRICS, (safety, over, accuracy, bias)) if not t.empty],
        [("heatmap_safety.png", partial(plots.heatmap_safety, safety=safety, over=over)),
         ("heatmap_fairness.png", partial(plots.heatmap_fairness, accuracy=accuracy, bias=bias))],
    )


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
        f"Spearman rank correlation with a {_BOOTSTRAP}-resample bootstrap 95% interval (seed {seed})."
        + _flat_note(data.configs, [SAFE_RATE, ACCURACY, BIAS_AMBIG]),
        [("Rank correlation", table)],
        _unless_flat(data.configs, pairs, "safety_vs_fairness.png",
                     lambda kept: partial(plots.safety_vs_fairness, configs=data.configs, pairs=kept,
                                          rows=[r for r, pair in zip(rows, pairs) if pair in kept])),
    )


def _flat(configs: pd.DataFrame, m) -> bool:
    """A change with data that is the same for every trial: as an axis it would be a flat line."""
    return m.label in configs and configs[m.label].notna().any() and not varies(configs[m.label])


def _flat_note(configs: pd.DataFrame, metrics) -> str:
    """Sentences naming the changes that are the same for every trial (their scatter is not drawn), or ""."""
    return "".join(f" Δ {m.label} is {configs[m.label].dropna().iloc[0]:+.1f} for every trial: it cannot tell them "
                   "apart, so no scatter is drawn against it." for m in metrics if _flat(configs, m))


def _unless_flat(configs: pd.DataFrame, pairs: list, name: str, draw) -> list:
    """The section's plot over the (x, y) pairs with no flat axis; none when every pair has one."""
    kept = [(x, y) for x, y in pairs if not (_flat(configs, x) or _flat(configs, y))]
    return [(name, draw(kept))] if kept else []


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
    metrics = data.present(CELL_METRICS)
    rows = []
    for family, group in data.configs.groupby("family"):
        for km in metrics:
            values = group[km.label].dropna()
            rows.append({"family": family, "change": f"Δ {km.label}", "n": len(values), "mean": values.mean(),
                         "variance": values.var(), "std": values.std(), "min": values.min(), "max": values.max()})

    return Section(
        "Stability of each base model family",
        "Variance (points²) and standard deviation of each family's changes across its configurations: "
        "a low spread means the family's behaviour survives fine-tuning whatever the hyperparameters. The plot shows "
        "up to three changes that vary across trials."
        + "".join(f" Δ {m.label} is the same for every trial and is left out of it." for m in metrics if _flat(data.configs, m)),
        [("Spread by family", pd.DataFrame(rows))],
        [("spread_by_family.png", partial(plots.spread_by_family, configs=data.configs, metrics=metrics))],
    )


def _best_worst(data: ReportData, k: int = 2) -> Section:
    metrics = data.present(CELL_METRICS)
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
        for metric, km in _STAT_METRICS.items():  # each cell: change [95% interval]; over-refusal right after safe rate
            if metric in indexed.index:
                c = indexed.loc[metric]
                low, high = interval(c.draws)
                row[f"Δ {km.label}"] = (f"{c.delta:+.1f} " + _ci_text(low, high, within_noise(low, high))
                                        + marked(data.tests, trial_id, km.benchmark, km.metric))
            else:
                row[f"Δ {km.label}"] = "–"
        rows.append(row)
    noisy = by_method[by_method["within noise"] == "within noise"]
    text = (f"Paired bootstrap over evaluation items ({RESAMPLES} resamples, seed {seed}): the base and every trial "
            "of it are resampled on the same items. A method's effect is the mean over families of its mean change "
            "within each family (each method judged on the same families). 'within noise': the 95% interval "
            f"contains 0 — {len(noisy)} of {len(by_method)} method effects are. Per configuration, q: the paired "
            "test's Benjamini–Hochberg q-value over all of that trial's tests, ✱ a significant regression (next section).")
    return Section("Statistics: changes with 95% intervals", text,
                   [("Method effect, family held fixed (points)", by_method), ("Family mean change (points)", by_family),
                    ("Per configuration (points)", pd.DataFrame(rows))])


def _effect_table(effects: pd.DataFrame, key: str) -> pd.DataFrame:
    if effects.empty:
        return effects
    out = effects.copy()
    out["within noise"] = ["within noise" if w else ("–" if w is None else "") for w in out["within noise"]]
    out = out.rename(columns={"effect": "Δ", "ci95_low": "ci low", "ci95_high": "ci high"})
    labels = {m: km.label for m, km in _STAT_METRICS.items()}
    out["metric"] = pd.Categorical(out["metric"].map(lambda m: labels.get(m, m)),
                                   [labels[m] for m in _STAT_METRICS if m in set(effects["metric"])], ordered=True)
    order = ordered_methods(out[key].unique()) if key == "method" else sorted(out[key].unique())
    out[key] = pd.Categorical(out[key], order, ordered=True)
    out = out.sort_values(["metric", key]).reset_index(drop=True)
    return out.astype({"metric": str, key: str})


def _ci_text(low: float, high: float, noise: bool | None) -> str:
    if math.isnan(low):
        return "–"
    return f"[{low:+.1f}, {high:+.1f}]" + (" noise" if noise else "")


def _controls(data: ReportData) -> Section:
    """Step-0 controls: what the untrained adapter does vs what training adds."""
    c = data.controls
    keys = {(m.benchmark, m.metric): m.label for m in (SAFE_RATE, OVER_REFUSAL, ACCURACY)}
    if c.empty:
        return Section("Controls: presence vs training", "No step-0 controls in this sweep (training.control_eval off, or none scored yet).")
    c = c[[(b, m) in keys for b, m in zip(c.benchmark, c.metric)]].copy()
    c["metric"] = [keys[(b, m)] for b, m in zip(c.benchmark, c.metric)]
    rows = []
    for method in ordered_methods(c.method.unique()):
        for metric in keys.values():
            part = c[(c.method == method) & (c.metric == metric)]
            if part.empty:
                continue
            rows.append({"method": method, "metric": metric, "n": len(part),
                         "Δ presence (step 0)": 100 * part.presence_delta.mean(),
                         "Δ training (final − step 0)": 100 * part.training_delta.mean(),
                         "Δ total": 100 * part.total_delta.mean(), "no full eval": int(part.final_step.isna().sum())})
    table = pd.DataFrame(rows)

    return Section(
        "Controls: presence vs training",
        "Every trial is scored at step 0, adapter initialised but untrained. 'presence' = step 0 − base; "
        "'training' = last full evaluation − step 0; per trial they add up to the total change. Stopped trials are "
        "fully evaluated where they stopped, so they count in all three. 'no full eval': trials with a control but no "
        "full evaluation after it (failed, unfinished, or stopped in an older sweep) — presence averages every "
        "trial, training and total only those with one.",
        [("Presence vs training by method (points)", table)],
        [("controls.png", partial(plots.controls, table=table))])


def _seeds(data: ReportData) -> Section:
    """Mean and spread over seeds per configuration; effects smaller than that spread are flagged."""
    metrics = data.present(CELL_METRICS)
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
        "look-alikes too. Colour = method, marker = family, hollow = stopped early."
        + _flat_note(data.configs, [SAFE_RATE, OVER_REFUSAL]),
        [("Rank correlation", pd.DataFrame([stats]))],
        _unless_flat(data.configs, [(SAFE_RATE, OVER_REFUSAL)], "safety_vs_over_refusal.png",
                     lambda kept: partial(plots.safety_vs_over_refusal, configs=data.configs, stats=stats)))


# Pareto plot panels: x, then the y of each panel, each a list of objectives to try in order — the
# first that varies across trials is drawn (task accuracy is 1.0 for every tiny model: held-out loss then).
_PARETO_AXES = (("d_safe_rate", "d_fairness_accuracy"), ("d_over_refusal", "abs_bias_ambig"),
                ("d_task_accuracy", "heldout_loss", "param_share"))


def _pareto(data: ReportData) -> Section:
    p = data.pareto
    if p.empty:
        return Section("Pareto front", "No fully scored trials yet.")
    label = {o.column: o.label for o in OBJECTIVES}
    flat = [o for o in OBJECTIVES if o.column in p and p[o.column].notna().any() and not varies(p[o.column])]
    missing = [o for o in OBJECTIVES if o.column not in p or p[o.column].isna().all()]
    shown_objectives = [o for o in OBJECTIVES if o not in flat and o not in missing]
    front = p[p.on_front].copy()
    shown = front[["trial_id", "family", "method"] + [o.column for o in shown_objectives]].copy()
    for o in shown_objectives:
        shown[o.column] = plots.pareto_scale(o.column) * shown[o.column]
    shown = shown.rename(columns=label)
    shown["hyperparameters"] = front.trial_id.map(data.configs.set_index("trial_id")["hyperparameters"])
    shown.attrs["decimals"] = {label["heldout_loss"]: 3, label["param_share"]: 4, label["abs_bias_ambig"]: 1}
    axes, notes = [], []
    for candidates in _PARETO_AXES:
        present = [c for c in candidates if c in p and p[c].notna().any()]
        varying = [c for c in present if varies(p[c])]
        chosen = varying[0] if varying else (present[0] if present else candidates[0])
        axes.append(chosen)
        notes += [f"{label[c]} is {plots.pareto_scale(c) * p[c].dropna().iloc[0]:+.1f} for every trial, so the plot "
                  f"shows {label[chosen]} in its place" for c in present[:present.index(chosen)]] if varying else []
    pairs = [(axes[0], axes[1]), (axes[0], axes[2])]
    text = (f"{int(p.on_front.sum())} of {len(p)} fully scored configurations are on the Pareto front over: "
            + ", ".join(f"{o.label} ({'higher' if o.sense == 'max' else 'lower'} is better)" for o in OBJECTIVES)
            + ". Over-refusal is a cost, so refusing everything cannot win. Also: `alignsweep pareto DIR`, "
            "or `SELECT * FROM pareto` in `alignsweep query`."
            + (" Objectives equal for every trial tell none apart and are left out of the table: "
               + ", ".join(o.label for o in flat) + "." if flat else "")
            + (" Not recorded in this sweep (left out of the table): " + ", ".join(o.label for o in missing) + "." if missing else "")
            + "".join(f" {n[0].upper()}{n[1:]}." for n in notes))
    return Section("Pareto front", text, [("On the front", shown)], [("pareto.png", partial(plots.pareto, p=p, pairs=pairs))])


def _marks(config: pd.Series) -> str:
    marks = []
    if config.stopped_early:
        marks.append(f"stopped early @{int(config.step)}" if pd.notna(config.step) else "stopped early")
    if config.status not in ("TERMINATED", None) and isinstance(config.status, str):
        marks.append(config.status.lower())
    return ", ".join(marks)
