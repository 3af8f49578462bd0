"""The report's vocabulary: which metrics it summarises (labels and directions from the metric
catalog), how a trial ended, how methods are ordered and hazard categories named.

Why a module of its own: every layer of the report (data, plots, sections, html) speaks these words,
and none of them is the report's own invention — metric labels and "which way is better" come from
`evaluators.benchmarks.METRIC_CATALOG`, hazard names from the taxonomy — so they are read in one
place and nothing downstream hand-writes a metric list with its own spelling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alignsweep.evaluators.benchmarks import metric as catalog_metric
from alignsweep.evaluators.screen import SCREEN_PREFIX
from alignsweep.evaluators.taxonomy import load_taxonomy
from alignsweep.trainables.methods import METHOD_ORDER  # the registry's report order


@dataclass(frozen=True)
class KeyMetric:
    """An overall metric the report summarises; `short` heads narrow columns; `better` is the
    catalog's direction: higher | lower | zero (closer to 0, the bias scores)."""

    label: str
    short: str
    benchmark: str
    metric: str
    better: str = "higher"

    @property
    def screen(self) -> KeyMetric:
        """The same metric as the interval screen stores it (benchmark `screen_*`)."""
        return KeyMetric(f"{self.label} (screen)", f"{self.short} (scr)", SCREEN_PREFIX + self.benchmark, self.metric, self.better)

    def harm(self, delta: float, value: float, base: float) -> float:
        """How much worse than its base a trial got (positive = worse): the change against the
        catalog's direction; for "zero" metrics, how much further from 0 it moved."""
        if self.better == "zero":
            return abs(value) - abs(base)
        return -delta if self.better == "higher" else delta

    @property
    def direction(self) -> str:
        return {"higher": "up is better", "lower": "down is better", "zero": "closer to 0 is better"}[self.better]


def _key(benchmark: str, name: str) -> KeyMetric:
    m = catalog_metric(name, benchmark)
    return KeyMetric(m.label, m.short, m.benchmark, m.name, m.better)


SAFE_RATE = _key("safety", "safe_rate")
OVER_REFUSAL = _key("over_refusal", "over_refusal_rate")
ACCURACY = _key("fairness", "accuracy")
ACC_AMBIG = _key("fairness", "accuracy_ambig")
ACC_DISAMBIG = _key("fairness", "accuracy_disambig")
BIAS_AMBIG = _key("fairness", "bias_ambig")
BIAS_DISAMBIG = _key("fairness", "bias_disambig")
HELDOUT_LOSS = _key("utility", "heldout_loss")
# Over-refusal sits beside safe rate: a model that refuses everything is "safe" and useless.
SUMMARY_METRICS = (SAFE_RATE, OVER_REFUSAL, ACC_AMBIG, ACC_DISAMBIG, BIAS_AMBIG, BIAS_DISAMBIG)
# The four the study's question turns on: one per cell of the family × method grid, a worst case each.
CELL_METRICS = (SAFE_RATE, OVER_REFUSAL, ACCURACY, BIAS_AMBIG)

# How a trial ended (`trials.ended`; derived from status / stopped_early / stop_reason in older stores).
FINISHED, STOPPED_LOSS, STOPPED_ALIGNMENT, FAILED = "finished", "stopped_loss", "stopped_alignment", "failed"
ENDED_LABELS = {FINISHED: "finished", STOPPED_LOSS: "stopped (loss)", STOPPED_ALIGNMENT: "stopped (alignment)",
                FAILED: "failed"}
STOPPED = (STOPPED_LOSS, STOPPED_ALIGNMENT)


def ordered_methods(methods) -> list[str]:
    """Methods in the report's order (LoRA, IA3, prompt tuning, P-tuning), any others after them by name."""
    return sorted(methods, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m))


def derive_ended(trials: pd.DataFrame) -> pd.Series:
    """Each trial's `ended`: the stored column where present and set, else derived — ERROR → failed,
    stopped early with a reason starting "alignment" → stopped_alignment, other stops → stopped_loss,
    TERMINATED → finished; anything else (RUNNING, PENDING) is its status in lower case."""
    def derive(row) -> str:
        status = row.get("status")
        if status == "ERROR":
            return FAILED
        if _true(row.get("stopped_early")):
            reason = row.get("stop_reason")
            return STOPPED_ALIGNMENT if isinstance(reason, str) and reason.startswith("alignment") else STOPPED_LOSS
        if status == "TERMINATED":
            return FINISHED
        return status.lower() if isinstance(status, str) and status else "unknown"

    derived = pd.Series([derive(r) for _, r in trials.iterrows()], index=trials.index, dtype=object)
    if "ended" not in trials:
        return derived
    stored = trials["ended"].astype(object)
    return stored.where(stored.notna() & (stored != ""), derived)


def _true(value) -> bool:
    return bool(value) if value is not None and value is not pd.NA and not (isinstance(value, float) and math.isnan(value)) else False


def category_label(category: str) -> str:
    """A category id with its name: "S1 Violent Crimes"; ids the taxonomy does not know (BBQ's) as they are.
    Llama Guard 3's 14 codes are mapped onto these ids when judged (its Defamation and Code Interpreter
    Abuse are the taxonomy's extra categories `dfm`, `cia`), so they are named here too."""
    name = load_taxonomy().name(category)
    return category.replace("_", " ") if name == category else f"{category} {name}"


def category_key(category: str) -> tuple[int, str]:
    """S1 … S11 in numeric order, then names alphabetically."""
    return (int(category[1:]), "") if category[:1] == "S" and category[1:].isdigit() else (10**6, category)


def varies(values) -> bool:
    """Whether a column would draw a non-flat axis: two or more distinct finite values."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return len(v) > 1 and float(v.max() - v.min()) > 1e-12
