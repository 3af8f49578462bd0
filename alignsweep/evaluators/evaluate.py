"""One evaluation of one model (a base, or a base with an adapter): safety, over-refusal, fairness.

Ray-free on purpose: the evaluator actor, `alignsweep audit` and tests all run this same code; only
who judges (a local judge or the shared judge actor) differs, passed in as a function.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from alignsweep.evaluators.adapters import attached
from alignsweep.evaluators.benchmarks import METRIC_CATALOG, OVERALL, Benchmark, ScoringContext, registered
from alignsweep.evaluators.benchmarks.base import respond_greedily
from alignsweep.evaluators.config import EvaluationSpec
from alignsweep.evaluators.judges import Verdict
from alignsweep.evaluators.payload import AdapterPayload
from alignsweep.evaluators.records import persist
from alignsweep.evaluators.screen import SCREEN_PREFIX, as_screen, screen_subset
from alignsweep.models.loading import LoadOptions

JudgeFn = Callable[[list[tuple[str, str]]], list[Verdict]]
#: (benchmark, items scored, items): what `Evaluator.evaluate(progress=…)` reports as it goes.
ItemProgress = Callable[[str, int, int], None]


def headline_metrics() -> tuple[str, ...]:
    """Metrics handed to Tune under their bare name (overall value); every category also as
    `metric/category`. Screen metrics (benchmark `screen_*`) go to Tune as `screen_<metric>`."""
    return tuple(dict.fromkeys(m.name for m in METRIC_CATALOG if m.headline))


@dataclass
class EvalResult:
    metrics: list[dict[str, Any]] = field(default_factory=list)  # benchmark, category, metric, value, n
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # item table → rows
    seconds: float = 0.0
    device: str | None = None  # where the evaluator ran

    def copy(self) -> "EvalResult":
        return EvalResult([dict(r) for r in self.metrics],
                          {table: [dict(r) for r in rows] for table, rows in self.items.items()}, self.seconds,
                          self.device)

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.items.get(table, [])

    def flat(self) -> dict[str, float]:
        """`{"safe_rate": …, "safe_rate/S1": …, "accuracy": …, "accuracy/Age": …}` for `tune.report`."""
        headline = headline_metrics()
        out: dict[str, float] = {}
        for row in self.metrics:
            if row["metric"] not in headline:
                continue
            metric = SCREEN_PREFIX + row["metric"] if row["benchmark"].startswith(SCREEN_PREFIX) else row["metric"]
            key = metric if row["category"] == OVERALL else f"{metric}/{row['category']}"
            out[key] = float(row["value"]) if row["value"] is not None else math.nan
        return out


_CACHE_SIZE = 64


def adapter_key(adapter: AdapterPayload | None, screen: float | None, full: bool) -> str | None:
    """The adapter's content digest (taken once, when its payload was read) with what is scored; None
    without an adapter: the evaluator's result-cache key, and how requests are routed among actors."""
    import hashlib

    if adapter is None:
        return None
    return hashlib.sha256(f"{screen}|{full}|{adapter.digest}".encode()).hexdigest()


def active_benchmarks(spec: EvaluationSpec) -> list[Benchmark]:
    """The registered benchmarks the spec enables, then one per task file (`evaluation.tasks`)."""
    from alignsweep.evaluators.benchmarks.lm_eval_score import TaskBenchmark

    return [b for b in registered() if b.enabled(spec)] + [TaskBenchmark(p, spec.tasks_cwd) for p in spec.tasks]


class Evaluator:
    """A base model loaded once, plus every enabled benchmark's items; `evaluate` scores the base with or
    without an adapter."""

    def __init__(self, spec: EvaluationSpec, base_model: str, *, judge: JudgeFn, judge_name: str,
                 over_refusal_judge: JudgeFn | None = None, over_refusal_judge_name: str = "refusal",
                 options: LoadOptions = LoadOptions(), device: str | None = None) -> None:
        from alignsweep.models.devices import choose_device, describe
        from alignsweep.models.loading import load_tokenizer, load_with
        from alignsweep.models.refs import resolve_model

        self.spec = spec
        self.base_model = base_model
        path = resolve_model(base_model).path
        device = device or choose_device()
        self.device = describe(device)  # stored with every metric this evaluator computes
        self.model = load_with(path, options, device=device)
        self.tokenizer = load_tokenizer(path, trust_remote_code=options.trust_remote_code, revision=options.revision)
        self.judges = {"safety": (judge, judge_name),
                       "over_refusal": (over_refusal_judge or judge,
                                        over_refusal_judge_name if over_refusal_judge else judge_name)}
        self.benchmarks: list[Benchmark] = active_benchmarks(spec)
        self.items: dict[str, list[Any]] = {b.name: b.load(spec) for b in self.benchmarks}
        self._screen_reference: dict[float, dict[str, float]] = {}
        # Byte-identical adapters score identically: trials that differ only in learning rate share
        # their step-0 control (same seed, same initialisation), so it is scored once.
        self._cache: dict[str, EvalResult] = {}

    def evaluate(self, adapter: AdapterPayload | None, *, screen: float | None = None, full: bool = True,
                 progress: ItemProgress | None = None) -> EvalResult:
        """Score the base (or base + adapter). `screen`: also report the fixed stratified subset's
        metrics (benchmarks `screen_*`); `full=False`: score only that subset (the cheap per-interval check).
        `progress(benchmark, scored, items)` hears each benchmark start, advance batch by batch, and end."""
        if not full and screen is None:
            raise ValueError("a screen-only evaluation needs a screen fraction")
        key = adapter_key(adapter, screen, full)
        if key is not None and key in self._cache:
            return self._cache[key].copy()
        result = self._evaluate(adapter, screen, full, progress)
        if key is not None:
            self._cache[key] = result.copy()
            while len(self._cache) > _CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
        return result

    def _subset(self, benchmark: Benchmark, fraction: float | None) -> list[Any]:
        items = self.items[benchmark.name]
        return items if fraction is None else screen_subset(items, fraction, id_attr=benchmark.item_id)

    def _evaluate(self, adapter: AdapterPayload | None, screen: float | None, full: bool,
                  progress: ItemProgress | None = None) -> EvalResult:
        start = time.perf_counter()
        result = EvalResult()
        screen_rows: list[dict[str, Any]] = []
        scored: list[tuple[Benchmark, list[dict[str, Any]]]] = []
        with attached(self.model, adapter) as model:
            ctx = ScoringContext(model=model, tokenizer=self.tokenizer, respond=self._responder(model),
                                 judges=self.judges)
            for benchmark in self.benchmarks:
                if not full and benchmark.item_table is None:
                    continue  # the screen watches what is stored per item; skip what it cannot see
                items = self._subset(benchmark, None if full else screen)
                if items:
                    scored.append((benchmark, _score(benchmark, ctx, items, self.spec, progress)))
        self._add_coherence([r for b, rows in scored if b.name == "safety" for r in rows])
        for benchmark, rows in scored:
            if benchmark.item_table is not None:
                result.items.setdefault(benchmark.item_table, []).extend(rows)
            if full:
                result.metrics += benchmark.summarise(rows)
            if screen is not None and benchmark.item_table is not None:
                ids = {getattr(i, benchmark.item_id) for i in self._subset(benchmark, screen)}
                subset = [r for r in rows if r[benchmark.item_id] in ids]
                screen_rows += benchmark.summarise(subset) if subset else []
        result.metrics += as_screen(screen_rows)
        result.seconds = time.perf_counter() - start
        result.device = self.device
        return result

    def _add_coherence(self, rows: list[dict[str, Any]]) -> None:
        """`coherence` / `coherent` of each hazard response, under the base model (the adapter is off by
        now). Over-refusal rows stay null: half the cost (~3 ms a response on CPU), and no metric reads them."""
        s = self.spec.safety
        if not s.coherence or not rows:
            return
        from alignsweep.inference.coherence import base_loglik_coherence, is_coherent

        scores = base_loglik_coherence(self.model, self.tokenizer, [r["response"] for r in rows])
        for row, score in zip(rows, scores):
            row["coherence"], row["coherent"] = score, is_coherent(score, s.coherence_threshold)

    def _responder(self, model: Any) -> Callable[[Sequence[str]], list[str]]:
        """Greedy single-turn chat replies with the spec's safety decoding settings."""
        s = self.spec.safety

        def respond(prompts: Sequence[str]) -> list[str]:
            return respond_greedily(model, self.tokenizer, prompts, max_new_tokens=s.max_new_tokens,
                                    batch_size=s.batch_size)

        return respond

    def screen_reference(self, fraction: float) -> dict[str, float]:
        """The base model's screen metrics (flat), scored once per fraction: what a stopper compares against."""
        if fraction not in self._screen_reference:
            self._screen_reference[fraction] = self.evaluate(None, screen=fraction, full=False).flat()
        return self._screen_reference[fraction]


def _score(benchmark: Benchmark, ctx: ScoringContext, items: list[Any], spec: EvaluationSpec,
           progress: ItemProgress | None) -> list[dict[str, Any]]:
    """`benchmark.score`, with its inference batches reported as items scored when someone listens.

    Batches count prompts or (context, choice) requests; their share of the call is that share of the
    items (never backwards: a judge that generates too starts a second count), and the last item is
    counted only once `score` has returned.
    """
    if progress is None:
        return benchmark.score(ctx, items, spec)
    from alignsweep.inference.progress_hook import reporting

    n, shown = len(items), [0]

    def on_batch(done: int, total: int) -> None:
        scored = min(n - 1, n * done // max(total, 1))
        if scored > shown[0]:
            shown[0] = scored
            progress(benchmark.name, scored, n)

    progress(benchmark.name, 0, n)
    with reporting(on_batch):
        rows = benchmark.score(ctx, items, spec)
    progress(benchmark.name, n, n)
    return rows


#: The screen metrics an alignment-aware stopper watches, reported as `<metric>_delta` (trial − base).
SCREEN_WATCHED = ("screen_safe_rate", "screen_bias_ambig")


def screen_deltas(flat: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
    """`screen_safe_rate_delta` etc.: the trial's screen value minus the base's on the same items (NaN if undefined)."""
    return {f"{k}_delta": flat.get(k, math.nan) - reference.get(k, math.nan) for k in SCREEN_WATCHED}


def screen_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """`screen_safe_rate_n` (hazard items screened) and `screen_bias_ambig_n` (ambiguous answers that
    were not "unknown"): the sample sizes behind the watched screen metrics. Why: the stopper's bound
    on a screened change needs them, and the bias on a handful of non-unknown answers is noise."""
    out: dict[str, int] = {}
    for r in rows:
        if r["benchmark"].startswith(SCREEN_PREFIX) and r["category"] == OVERALL \
                and SCREEN_PREFIX + r["metric"] in SCREEN_WATCHED:
            out[f"{SCREEN_PREFIX}{r['metric']}_n"] = int(r.get("n") or 0)
    return out


def store_result(result: EvalResult, results_dir: str, *, trial_id: str, step: int, base_model: str,
                 method: str) -> None:
    """Write metrics and items of one (trial, step): one file per table."""
    metrics = [{**row, "base_model": base_model, "method": method} for row in result.metrics]
    for row in metrics:
        row.setdefault("device", result.device)
    persist(results_dir, "metrics", metrics, trial_id=trial_id, step=step)
    for table, rows in result.items.items():
        if rows:
            persist(results_dir, table, rows, trial_id=trial_id, step=step)


def method_of(adapter: AdapterPayload | None, method: str | None) -> str:
    """The `method` column of a checkpoint's records: `base` without an adapter, else the caller's name.

    The evaluators sit below the method registry, so they never guess a method from an adapter; callers
    name it (a trial its plan's method, `audit` via `trainables.methods.method_of_adapter`)."""
    if method:
        return method
    if adapter is None:
        return "base"
    raise ValueError(f"adapter {adapter.name}: its records need a method name (none was given)")


def local_judges(spec: EvaluationSpec) -> tuple[JudgeFn, str, JudgeFn, str]:
    """In-process judges (for `audit` and tests): (safety judge, name, over-refusal judge, name)."""
    from alignsweep.evaluators.judges import build_judge, build_judges

    safety = build_judges(spec.safety.judges, spec.safety.ensemble)
    over = build_judge(spec.over_refusal.judge)
    return safety.judge, safety.name, over.judge, over.name


