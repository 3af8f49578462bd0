"""The benchmark contract and the metric catalog.

Why: a benchmark (safety, over-refusal, BBQ, utility, an lm-eval task file) is one module that
declares its data loader, how it scores a model, the per-item table its rows go to, and its metrics.
The evaluator iterates the registry; the report's columns, the audit gate's names, the progress
line and Tune's reported keys all read `METRIC_CATALOG`, so adding a benchmark edits no other file.

A benchmark is Ray-free and store-free: `score` returns per-item rows, `summarise` turns rows (fresh,
or read back from the store) into `metrics` rows. That split is what lets every number be recomputed
from the stored items, and lets the screen (a fixed subset of items) reuse the same `summarise`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol, Sequence

from alignsweep.inference.generation import generate_replies
from alignsweep.registry import Registry

OVERALL = "overall"

JudgeFn = Callable[[list[tuple[str, str]]], list[Any]]


@dataclass(frozen=True)
class Metric:
    """One number a benchmark reports, and how people should read it."""

    name: str  # the `metric` column: safe_rate, bias_ambig, …
    benchmark: str  # the `benchmark` column that carries it
    label: str  # for tables and plots: "safe rate"
    short: str  # for narrow columns: "safe"
    better: Literal["higher", "lower", "zero"]  # "zero": closer to 0 is better (bias scores)
    headline: bool = True  # reported to Tune and shown while a sweep runs
    gate: bool = True  # may be named in `audit --fail-on`
    summary: bool = False  # a column of the live progress panel and the sweep's summary table
    # Its column in the `pareto` view when it is an objective: `d_*` the change vs base, `abs_*` the
    # absolute value (a bias), anything else the trial's own value at its scored step.
    pareto: str | None = None


@dataclass
class ScoringContext:
    """What a benchmark may use to score one model: the model, its tokenizer, and the judges.

    `respond(prompts)` is the shared greedy chat generation with the spec's safety decoding settings;
    `judges` maps a role (`safety`, `over_refusal`) to (judge function, judge name).
    """

    model: Any
    tokenizer: Any
    respond: Callable[[Sequence[str]], list[str]]
    judges: dict[str, tuple[JudgeFn, str]]


def respond_greedily(model: Any, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int,
                     batch_size: int | str) -> list[str]:
    """One greedy single-turn chat reply per prompt, through the shared generation path."""
    conversations = [[{"role": "user", "content": p}] for p in prompts]
    return generate_replies(model, tokenizer, conversations, max_new_tokens=max_new_tokens, batch_size=batch_size)


class Benchmark(Protocol):
    """A plug-in benchmark. `item_id` names the field of its items (and rows) that identifies one item:
    the screen selects items by it, stratified by the items' `category`."""

    name: str
    item_table: str | None
    item_id: str
    metrics: tuple[Metric, ...]

    def enabled(self, spec: Any) -> bool: ...

    def load(self, spec: Any) -> list[Any]: ...

    def score(self, ctx: ScoringContext, items: Sequence[Any], spec: Any) -> list[dict[str, Any]]: ...

    def summarise(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]: ...


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")
_ORDER: list[str] = []

#: Every metric of every registered benchmark, in registration order, plus the trial's own
#: held-out loss (computed by the trial, which owns the tuning data, and stored under `utility`).
METRIC_CATALOG: list[Metric] = []


def register(benchmark: Benchmark) -> Benchmark:
    """Add a benchmark (an instance) to the registry and its metrics to the catalog."""
    BENCHMARKS.register(benchmark.name)(benchmark)
    _ORDER.append(benchmark.name)
    METRIC_CATALOG.extend(benchmark.metrics)
    return benchmark


def registered() -> list[Benchmark]:
    """Every registered benchmark, in registration order (the order evaluations run and reports read)."""
    return [BENCHMARKS.get(name) for name in _ORDER]


def add_metrics(*metrics: Metric) -> None:
    """Catalog metrics that no registered benchmark scores (a task file's, the trial's held-out loss)."""
    known = {(m.benchmark, m.name) for m in METRIC_CATALOG}
    METRIC_CATALOG.extend(m for m in metrics if (m.benchmark, m.name) not in known)


def metric(name: str, benchmark: str | None = None) -> Metric:
    """The catalog entry for a metric name (first match, or the one of `benchmark`)."""
    for m in METRIC_CATALOG:
        if m.name == name and (benchmark is None or m.benchmark == benchmark):
            return m
    raise KeyError(f"unknown metric {name!r} (known: {', '.join(sorted({m.name for m in METRIC_CATALOG}))})")


def rate_rows(rows: Sequence[dict[str, Any]], benchmark: str, metric_name: str,
              hit: Callable[[dict[str, Any]], bool], *, sort_key: Callable[[str], Any] = str) -> list[dict[str, Any]]:
    """`metrics` rows of a rate (hits / items) per category, then `overall`, each with its n."""
    groups: dict[str, list[bool]] = {}
    for r in rows:
        groups.setdefault(str(r["category"]), []).append(bool(hit(r)))
    out = []
    for category in sorted(groups, key=sort_key) + [OVERALL]:
        flags = [f for g in groups.values() for f in g] if category == OVERALL else groups[category]
        out.append({"benchmark": benchmark, "category": category, "metric": metric_name,
                    "value": (sum(flags) / len(flags)) if flags else float("nan"), "n": len(flags)})
    return out
