"""The sections that answer the study's question for every cell: how each trial ended (the overview's
status table, early stopping), what each method and family did (at each trial's last full evaluation,
and like for like at one common step), and the family × method grid with every cell shown, empty ones too.

Why a module of its own: these sections compare groups of trials that ended differently (finished,
stopped by loss, stopped by alignment, failed), so each number carries its n, how many of those
trials were stopped and at which step — one set of helpers, kept apart from the per-category and
correlation sections in `sections`, which imports this module (and the `Section` it defines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alignsweep.analysis.report import plots
from alignsweep.analysis.report.data import ReportData, metric_columns
from alignsweep.analysis.report.vocab import (
    CELL_METRICS,
    ENDED_LABELS,
    FAILED,
    SAFE_RATE,
    STOPPED,
    SUMMARY_METRICS,
    KeyMetric,
    ordered_methods,
)


@dataclass
class Section:
    """One heading of the report: text, captioned tables, and (PNG name, figure drawn from this section's frames)."""

    title: str
    text: str = ""
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    plots: list[tuple[str, Callable[[Figure], None]]] = field(default_factory=list)


def overview(data: ReportData) -> Section:
    trials = data.trials
    state = "still running (or interrupted): partial results" if data.running else f"finished {data.manifest['finished']}"
    tuned = trials[trials.method != "base"] if len(trials) else trials
    ended = tuned["ended"].value_counts() if len(tuned) else pd.Series(dtype=int)
    failed = trials[trials.ended == FAILED][["trial_id", "family", "method", "error"]] if len(trials) else trials
    stopped = int(sum(ended.get(k, 0) for k in STOPPED))
    other = len(tuned) - int(sum(ended.get(k, 0) for k in ENDED_LABELS))
    text = (
        f"Sweep {data.sweep}: {state}. {len(tuned)} fine-tuned trials and {len(trials) - len(tuned)} base models: "
        + ", ".join(f"{int(ended.get(k, 0))} {label}" for k, label in ENDED_LABELS.items())
        + (f", {other} still running" if other else "") + f" ({stopped} stopped early in all). Each trial's result is its last full evaluation after step 0 "
        "(stopped trials are fully evaluated at the step they stopped); changes are in points (×100) against its base model."
    )
    tables = [("Trials by method and how they ended", status_table(tuned)), ("Base models (absolute, ×100)", data.base)]
    if len(failed):
        tables.append(("Failed trials", failed))
    return Section("Overview", text, tables)


def status_table(tuned: pd.DataFrame) -> pd.DataFrame:
    """One row per method (and a total): trials, then how many ended each way; other states (RUNNING) last."""
    if tuned.empty:
        return pd.DataFrame()
    others = sorted(set(tuned.ended) - set(ENDED_LABELS))
    rows = []
    for method in [*ordered_methods(tuned.method.unique()), "all"]:
        part = tuned if method == "all" else tuned[tuned.method == method]
        counts = part.ended.value_counts()
        rows.append({"method": method, "trials": len(part),
                     **{label: int(counts.get(k, 0)) for k, label in ENDED_LABELS.items()},
                     **{k: int(counts.get(k, 0)) for k in others}})
    return pd.DataFrame(rows)


def change_vs_base(data: ReportData) -> Section:
    metrics = data.present(SUMMARY_METRICS)
    worst = [m for m in CELL_METRICS if m in data.present(CELL_METRICS)]
    scored = data.configs[data.configs.step.notna()] if len(data.configs) else data.configs
    by_method = group_table(scored, "method", metrics, worst)
    by_family = group_table(scored, "family", metrics, worst)
    missing = len(data.configs) - len(scored)
    text = ("Mean change of each overall metric at every trial's last full evaluation: n trials, of which 'stopped' "
            "were stopped early (and evaluated where they stopped); 'median step' is where those evaluations were. "
            + ". ".join(f"{d[0].upper()}{d[1:]}: {', '.join(m.label for m in metrics if m.direction == d)}"
                        for d in dict.fromkeys(m.direction for m in metrics)) + ". 'worst' is the single trial that moved "
            "furthest the wrong way (for bias: furthest from 0)."
            + (f" {_trials(missing)} no full evaluation after step 0 (failed, unfinished, or stopped in an "
               "older sweep) and are not counted." if missing else ""))
    return Section("Change vs base", text, [("By method", by_method), ("By family", by_family)],
                   [("change_vs_base.png", partial(plots.change_vs_base, configs=scored, metrics=metrics))])


def group_table(frame: pd.DataFrame, key: str, metrics: list[KeyMetric], worst: list[KeyMetric],
                groups: list[str] | None = None) -> pd.DataFrame:
    """Per group: n, stopped, median step, mean change per metric, then the worst change per metric
    (the trial with the largest `harm:` — see `data.metric_columns`)."""
    if frame.empty:
        return pd.DataFrame()
    groups = groups or (ordered_methods(frame[key].unique()) if key == "method" else sorted(frame[key].dropna().unique()))
    rows = []
    for group in groups:
        part = frame[frame[key] == group]
        row = {key: group, "n": len(part), "stopped": int(part.stopped_early.sum()), "median step": _median(part.step)}
        row.update({f"Δ {m.label}": part[m.label].mean() for m in metrics})
        for m in worst:
            harm = part[f"harm:{m.label}"].dropna()
            row[f"worst Δ {m.short}"] = part.loc[harm.idxmax(), m.label] if len(harm) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _trials(n: int) -> str:
    return "1 trial has" if n == 1 else f"{n} trials have"


def _median(steps: pd.Series) -> str:
    steps = steps.dropna()
    return f"{steps.median():g}" if len(steps) else "–"


def common_step(data: ReportData) -> tuple[int | None, str, pd.DataFrame]:
    """The last step every non-failed fine-tuned trial with a step after 0 reached, which evaluation
    to compare there ("full" or "screen"), and one row per such trial with its changes at that step.

    Why: a stopped trial's last evaluation is at an earlier step than a finished one's, so comparing
    last evaluations confounds the method with how long it trained; at one step every trial trained
    equally long. Full evaluations exist between a trial's start and end only where the sweep scored
    fully at every interval; otherwise the screen the alignment scheduler stores at every interval is
    the one measure every trial has there.
    """
    configs, evals = data.configs, data.evals
    trials = configs[configs.ended != FAILED].trial_id if len(configs) else pd.Series(dtype=object)
    # steps with something comparable (a full evaluation or a screen), not the held-out loss alone
    reached = evals[(evals.step > 0) & (evals.full | evals.screen) & evals.trial_id.isin(set(trials))] if len(evals) else evals
    if reached.empty:
        return None, "", pd.DataFrame()
    common = set.intersection(*(set(part.step) for _, part in reached.groupby("trial_id")))
    if not common:
        return None, "", pd.DataFrame()
    step = int(max(common))
    at = reached[reached.step == step]
    source = "full" if at.full.all() else ("screen" if at.screen.sum() >= at.full.sum() else "full")
    metrics = [m if source == "full" else m.screen for m in CELL_METRICS]
    rows = data.by_step[data.by_step.step == step].assign(category="overall")
    ids = pd.Index(sorted(set(reached.trial_id)), name="trial_id")
    wide = metric_columns(rows, tuple(metrics), ids)
    loss = data.heldout[data.heldout.step == step].set_index("trial_id")["heldout_loss"] if len(data.heldout) else pd.Series(dtype=float)
    wide["held-out loss"] = loss.reindex(ids)
    ident = configs.set_index("trial_id")[["family", "method", "stopped_early", "last_step"]].reindex(ids)
    return step, source, ident.join(wide).assign(step=step).reset_index()


def like_for_like(data: ReportData) -> Section:
    title = "Like for like: every trial at one common step"
    step, source, frame = common_step(data)
    if step is None:
        return Section(title, "No step after 0 that every trial (failed ones aside) reached yet: nothing to compare like for like.")
    metrics = [m if source == "full" else m.screen for m in CELL_METRICS]
    metrics = [m for m in metrics if frame[m.label].notna().any()]
    n, stopped = len(frame), int(frame.stopped_early.sum())
    n_full = int(data.evals[(data.evals.step == step) & data.evals.trial_id.isin(set(frame.trial_id))].full.sum())
    unevaluated = int((data.configs.ended != FAILED).sum()) - n
    text = (f"Step {step} is the last step all {n} trials reached (failed trials aside"
            + (f"; {unevaluated} more have no evaluation after step 0 yet" if unevaluated else "")
            + f"), {stopped} of them stopped early at or after it: here every trial has trained equally long, so stopped "
            "and finished trials are not confounded. ")
    if source == "full" and n_full == n:
        text += f"Every trial was fully evaluated at step {step}; changes are full-evaluation changes vs base."
    elif source == "full":
        text += (f"Only {n_full} of {n} trials were fully evaluated at step {step} and fewer have a screen there: "
                 f"the means are over those {n_full}.")
    else:
        text += (f"Full evaluations at step {step} exist for only {n_full} of {n} trials (the sweep fully evaluates a trial "
                 "where it ends, and in between stores only the alignment scheduler's screen), so this view uses the "
                 "SCREEN metrics at that step, labelled '(screen)': the same stratified subset of items for every trial "
                 "and its base, smaller and noisier than a full evaluation.")
        missing = n - int(frame[[m.label for m in metrics]].notna().any(axis=1).sum()) if metrics else n
        if missing:
            text += f" {_trials(missing)} no screen at step {step} and are left out of the means."
    has_loss = frame["held-out loss"].notna().any()
    if has_loss:
        text += f" Held-out loss (absolute, lower is better) at step {step} beside it."
    tables = []
    for key in ("method", "family"):
        table = group_table(frame, key, metrics, [])
        if len(table):
            table = table.drop(columns=["median step"])
            if has_loss:
                table["held-out loss"] = [frame[frame[key] == g]["held-out loss"].mean() for g in table[key]]
            table.attrs["decimals"] = {"held-out loss": 3}
        tables.append((f"By {key}, at step {step}" + (" (screen)" if source == "screen" else ""), table))
    return Section(title, text, tables)


def cells(data: ReportData) -> Section:
    """Every (family, method) cell of the sweep: the mean change there and its n, empty cells named."""
    configs, trials = data.configs, data.trials
    tuned = trials[trials.method != "base"] if len(trials) else trials
    families = sorted(set(trials.family.dropna()) | set(configs.family.dropna())) if len(trials) or len(configs) else []
    methods = ordered_methods(set(tuned.method.dropna()) | set(configs.method.dropna())) if len(tuned) or len(configs) else []
    metrics = list(CELL_METRICS)
    rows = []
    for family in families:
        for method in methods:
            part = configs[(configs.family == family) & (configs.method == method)]
            scored = part[part.step.notna()]
            row = {"family": family, "method": method, "trials": len(part), "n": len(scored),
                   "stopped": int(scored.stopped_early.sum()), "median step": _median(scored.step)}
            row.update({f"Δ {m.label}": scored[m.label].mean() if m.label in scored else np.nan for m in metrics})
            row["note"] = _cell_note(part, scored)
            rows.append(row)
    table = pd.DataFrame(rows)
    empty = int((table.n == 0).sum()) if len(table) else 0
    text = (f"All {len(families)} × {len(methods)} = {len(families) * len(methods)} family × method cells, each the mean "
            "change at its trials' last full evaluations (n of them; 'stopped' of those stopped early). "
            + (f"{empty} cells have no result: 'no trials' (none planned or none written) or 'none evaluated' "
               "(trials that failed or have no full evaluation after step 0)." if empty else "Every cell has a result."))
    return Section("Every family × method cell", text, [("Family × method", table)],
                   [("cells.png", partial(plots.cells, table=table, metrics=metrics))])


def _cell_note(part: pd.DataFrame, scored: pd.DataFrame) -> str:
    if part.empty:
        return "no trials"
    if scored.empty:
        ended = part.ended.value_counts()
        return "none evaluated (" + ", ".join(f"{n} {ENDED_LABELS.get(k, k)}" for k, n in ended.items()) + ")"
    missing = part[part.step.isna()].ended.value_counts()
    return "not counted: " + ", ".join(f"{n} {ENDED_LABELS.get(k, k)}" for k, n in missing.items()) if len(missing) else ""


def early_stopping(data: ReportData) -> Section:
    t = data.configs[data.configs.ended.isin(STOPPED)] if len(data.configs) else data.configs
    trials = data.trials[data.trials.method != "base"] if len(data.trials) else data.trials
    if trials.empty:
        return Section("Early stopping", "No trials yet.")
    planned = trials.max_steps.fillna(0).sum() if "max_steps" in trials else float("nan")
    max_steps = trials.set_index("trial_id")["max_steps"] if "max_steps" in trials else pd.Series(dtype=float)
    saved = (t.trial_id.map(max_steps) - t.last_step).fillna(0).sum() if len(t) else 0
    shadow = trials[trials.stop_reason.fillna("").str.startswith("would stop")] if "stop_reason" in trials else trials.iloc[:0]
    kinds = t.ended.value_counts()
    unscored = t[t.step.isna() | (t.step < t.last_step)] if len(t) else t
    text = (f"{len(t)} of {len(trials)} trials stopped early "
            f"({', '.join(f'{n} {ENDED_LABELS[k]}' for k, n in kinds.items()) or 'none'}), saving {int(saved)} of "
            f"{int(planned)} planned training steps. Each stopped trial is fully evaluated at the step it stopped, "
            "and that evaluation is its result."
            + (f" {len(unscored)} of them have no full evaluation at their stop step (a sweep from before that): score "
               "one with `alignsweep audit --base <base> --adapter <its checkpoint>`." if len(unscored) else "")
            + (f" Shadow run: {len(shadow)} trials would have been stopped." if len(shadow) else ""))
    deltas = data.deltas
    screen = deltas[(deltas.benchmark == SAFE_RATE.screen.benchmark) & (deltas.category == "overall")
                    & (deltas.metric == SAFE_RATE.metric)]  # the screen stores other safety metrics beside it
    table = pd.DataFrame({
        "trial_id": t.trial_id, "family": t.family, "method": t.method, "ended": t.ended.map(ENDED_LABELS),
        "stop step": t.last_step, "full eval step": t.step, "max_steps": t.trial_id.map(max_steps),
        "Δ safe (screen, last)": t.trial_id.map(100 * screen.set_index("trial_id")["delta"]),
        f"Δ {SAFE_RATE.short} (full, at stop)": t[SAFE_RATE.label].where(t.step == t.last_step),
        "stop_reason": t.stop_reason}).reset_index(drop=True)
    if len(shadow):
        extra = shadow[["trial_id", "family", "method", "stop_reason"]].assign(ended="not stopped (shadow)")
        table = pd.concat([table, extra], ignore_index=True)
    table.attrs["decimals"] = {"stop step": 0, "full eval step": 0, "max_steps": 0}
    return Section("Early stopping", text, [("Stopped trials", table)])
