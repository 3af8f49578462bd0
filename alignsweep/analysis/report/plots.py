"""The report's figures: one matplotlib function per PNG, plus the drawing helpers they share.

Why a module of its own: sections decide *what* a figure shows (they build the frames and stats);
this module only decides *how* it looks, so a figure can change without touching a table and the
sections carry no matplotlib code. Figures are drawn on a bare `Figure` (no pyplot, no global state,
no display backend) and are deterministic: the jitter is seeded, so the same store gives the same PNGs.
Every figure renders on empty input, saying "no data yet" in the axes it cannot fill.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from alignsweep.analysis.pareto import OBJECTIVES
from alignsweep.analysis.report.vocab import (
    METHOD_ORDER,
    OVER_REFUSAL,
    SAFE_RATE,
    KeyMetric,
    ordered_methods,
    varies,
)

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def save_plot(path: Path, draw: Callable[[Figure], None]) -> Path:
    """A Figure without pyplot: no global state, no display backend (Agg via savefig)."""
    fig = Figure(figsize=(11, 7), layout="constrained")
    draw(fig)
    fig.savefig(path, dpi=110)
    return path


def change_vs_base(fig: Figure, configs: pd.DataFrame, metrics: list[KeyMetric]) -> None:
    """change_vs_base.png: mean change per overall metric, by method (top) and by family (bottom)."""
    for ax, key in zip(fig.subplots(2, 1), ("method", "family")):
        _grouped_bars(ax, configs, key, metrics)
        ax.set_title(f"Mean change vs base by {key} (error bar: std across configurations)")


def controls(fig: Figure, table: pd.DataFrame) -> None:
    """controls.png: per method, the step-0 (presence) change beside the training change."""
    axes = np.atleast_1d(fig.subplots(1, 2))
    for ax, metric in zip(axes, ("safe rate", "over-refusal")):
        part = table[table.metric == metric] if len(table) else table
        if part.empty:
            _no_data(ax, metric)
            continue
        methods = ordered_methods(part.method)
        part = part.set_index("method").loc[methods]
        x = np.arange(len(methods))
        ax.bar(x - 0.2, part["Δ presence (step 0)"], 0.4, label="presence (untrained adapter)", color="#999999")
        ax.bar(x + 0.2, part["Δ training (final − step 0)"], 0.4, label="training", color="#1f77b4")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, methods)
        ax.set_ylabel("change (points)")
        ax.set_title(f"Δ {metric}: presence vs training (mean over configurations)", fontsize=10)
        ax.legend(fontsize=8)


def heatmap_safety(fig: Figure, safety: pd.DataFrame, over: pd.DataFrame) -> None:
    """heatmap_safety.png: safe-rate and over-refusal changes, category × method."""
    left, right = fig.subplots(1, 2)  # each safe-rate change beside the over-refusal change it cost
    _heatmap(left, safety, "Change in safe rate by hazard category × method\n(points; up is better)", "RdBu")
    _heatmap(right, over, "Change in over-refusal of benign look-alikes\n(points; up is worse)", "RdBu_r")


def heatmap_fairness(fig: Figure, accuracy: pd.DataFrame, bias: pd.DataFrame) -> None:
    """heatmap_fairness.png: BBQ accuracy and ambiguous-bias changes, category × method."""
    left, right = fig.subplots(1, 2)
    _heatmap(left, accuracy, "Change in BBQ accuracy (points)", "RdBu")
    _heatmap(right, bias, "Change in ambiguous bias score\n(×100; up = more stereotyped)", "RdBu_r")


def safety_vs_over_refusal(fig: Figure, configs: pd.DataFrame, stats: dict) -> None:
    """safety_vs_over_refusal.png: one point per configuration, with its rank correlation."""
    _scatter(fig.subplots(), configs, SAFE_RATE, OVER_REFUSAL, stats)


def safety_vs_fairness(fig: Figure, configs: pd.DataFrame, pairs: list[tuple[KeyMetric, KeyMetric]], rows: list[dict]) -> None:
    """safety_vs_fairness.png: one scatter per (x, y) pair, titled with that pair's row of stats."""
    for ax, (x, y), row in zip(np.atleast_1d(fig.subplots(1, len(pairs))), pairs, rows):
        _scatter(ax, configs, x, y, row)


def pareto_scale(column: str) -> float:
    """Changes and the bias score are shown in points (×100); held-out loss and parameter share as they are."""
    return 100.0 if column.startswith("d_") or column == "abs_bias_ambig" else 1.0


def pareto(fig: Figure, p: pd.DataFrame, pairs: list[tuple[str, str]]) -> None:
    """pareto.png: the pareto view's points, the front starred, in one objective plane per (x, y) pair
    (the section picks axes that vary across trials)."""
    colors = _method_colors(p.method.unique())
    for ax, (x, y) in zip(fig.subplots(1, len(pairs)), pairs):
        lx, ly = (next(o.label for o in OBJECTIVES if o.column == c) for c in (x, y))
        pts = p.dropna(subset=[x, y]) if {x, y} <= set(p.columns) else p.iloc[:0]
        if pts.empty:
            _no_data(ax, f"{ly} vs {lx}")
            continue
        sx, sy = pareto_scale(x), pareto_scale(y)
        for method in ordered_methods(pts.method.unique()):
            part = pts[pts.method == method]
            off, on = part[~part.on_front], part[part.on_front]
            ax.scatter(sx * off[x], sy * off[y], s=30, color=colors[method], alpha=0.45, label=method)
            ax.scatter(sx * on[x], sy * on[y], s=90, color=colors[method], edgecolors="black", linewidths=1.4, marker="*")
        if sy == 100:
            ax.axhline(0, color="grey", linewidth=0.6)
        if sx == 100:
            ax.axvline(0, color="grey", linewidth=0.6)
        ax.set_xlabel(f"{lx}" + (" (points)" if sx == 100 else ""))
        ax.set_ylabel(f"{ly}" + (" (points)" if sy == 100 else ""))
        ax.set_title(f"{ly} vs {lx} — ★ on the {len(OBJECTIVES)}-objective front", fontsize=10)
        ax.legend(fontsize=7)


def spread_by_family(fig: Figure, configs: pd.DataFrame, metrics: list[KeyMetric]) -> None:
    """spread_by_family.png: each family's changes across configurations, as boxes and points; three
    metrics that vary across trials (a change equal for every trial would draw a flat line)."""
    shown = [m for m in metrics if varies(configs[m.label])][:3] or metrics[:1] or [SAFE_RATE]
    for i, (ax, km) in enumerate(zip(np.atleast_1d(fig.subplots(1, len(shown))), shown)):
        _boxes(ax, configs, km, legend=i == 0)


def cells(fig: Figure, table: pd.DataFrame, metrics: list[KeyMetric]) -> None:
    """cells.png: one family × method grid per metric, each cell its mean change and n; empty cells
    grey with their note ("no trials", "none evaluated")."""
    axes = np.atleast_1d(fig.subplots(2, 2)).ravel()
    if table.empty:
        for ax, km in zip(axes, metrics):
            _no_data(ax, f"Δ {km.label}")
        return
    families = list(dict.fromkeys(table.family))
    methods = list(dict.fromkeys(table.method))
    for ax, km in zip(axes, metrics):
        grid = table.pivot(index="family", columns="method", values=f"Δ {km.label}").reindex(index=families, columns=methods)
        n = table.pivot(index="family", columns="method", values="n").reindex(index=families, columns=methods)
        note = table.pivot(index="family", columns="method", values="note").reindex(index=families, columns=methods)
        values = grid.to_numpy(dtype=float)
        limit = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
        cmap = "RdBu" if km.better == "higher" else "RdBu_r"
        ax.set_facecolor("#e6e6e6")
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:+.1f}\nn={int(n.iloc[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if abs(v) > 0.6 * limit else "black")
            else:
                text = "no trials" if note.iloc[i, j] == "no trials" else ("none evaluated" if int(n.iloc[i, j]) == 0 else "–")
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="#555555", style="italic")
        ax.set_xticks(range(len(methods)), methods, rotation=15, ha="right")
        ax.set_yticks(range(len(families)), families)
        ax.set_title(f"Δ {km.label} (points; {km.direction})", fontsize=10)
        fig.colorbar(image, ax=ax, shrink=0.8)


def _no_data(ax: Axes, title: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data yet", ha="center", va="center", fontsize=14, color="grey", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _method_colors(methods) -> dict[str, tuple]:
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    known = [*METHOD_ORDER, *sorted(set(methods) - set(METHOD_ORDER))]
    return {m: palette[known.index(m) % len(palette)] for m in ordered_methods(methods)}


def _grouped_bars(ax: Axes, configs: pd.DataFrame, key: str, metrics: list[KeyMetric]) -> None:
    labels = [m.label for m in metrics]
    scored = configs.dropna(subset=labels, how="all") if labels else configs.iloc[:0]
    if scored.empty:
        return _no_data(ax, "")
    groups = ordered_methods(scored[key].unique()) if key == "method" else sorted(scored[key].unique())
    colors = _method_colors(groups) if key == "method" else {g: c for g, c in zip(groups, _family_colors(len(groups)))}
    width = 0.8 / len(groups)
    x = np.arange(len(labels))
    for i, group in enumerate(groups):
        values = scored[scored[key] == group][labels]
        ax.bar(x + (i - (len(groups) - 1) / 2) * width, values.mean(), width, yerr=values.std().fillna(0),
               label=group, color=colors[group], capsize=2, error_kw={"elinewidth": 0.8})
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [textwrap.fill(label, 16) for label in labels])
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
