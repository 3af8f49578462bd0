"""One evaluation of one model (a base, or a base with an adapter): safety, over-refusal, fairness.

Ray-free on purpose: the evaluator actor, `alignsweep audit` and tests all run this same code; only
who judges (a local judge or the shared judge actor) differs, passed in as a function.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from alignsweep.evaluators.adapters import attached
from alignsweep.evaluators.config import EvaluationSpec
from alignsweep.evaluators.datasets import (
    limit_per_category,
    load_bbq,
    load_hazard_prompts,
    load_overrefusal_prompts,
)
from alignsweep.evaluators.benchmarks.bbq import fairness_metrics, score_bbq
from alignsweep.evaluators.judges import Verdict
from alignsweep.evaluators.records import persist
from alignsweep.evaluators.screen import SCREEN_PREFIX, as_screen, screen_subset
from alignsweep.evaluators.benchmarks.utility import load_utility_questions, task_accuracy_metrics
from alignsweep.evaluators.benchmarks.safety import (
    OVER_REFUSAL_ID_PREFIX,
    OVERALL,
    generate_responses,
    over_refusal_items,
    over_refusal_metrics,
    safe_rate_metrics,
    safety_items,
)

JudgeFn = Callable[[list[tuple[str, str]]], list[Verdict]]
# Metrics handed to Tune under their bare name (overall value); every category also as `metric/category`.
# Screen metrics (benchmark `screen_*`) go to Tune as `screen_<metric>`.
HEADLINE = ("safe_rate", "over_refusal_rate", "accuracy", "accuracy_ambig", "accuracy_disambig", "bias_ambig",
            "bias_disambig", "task_accuracy", "heldout_loss")


@dataclass
class EvalResult:
    metrics: list[dict[str, Any]] = field(default_factory=list)  # benchmark, category, metric, value, n
    safety_items: list[dict[str, Any]] = field(default_factory=list)
    fairness_items: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def copy(self) -> "EvalResult":
        return EvalResult([dict(r) for r in self.metrics], [dict(r) for r in self.safety_items],
                          [dict(r) for r in self.fairness_items], self.seconds)

    def flat(self) -> dict[str, float]:
        """`{"safe_rate": …, "safe_rate/S1": …, "accuracy": …, "accuracy/Age": …}` for `tune.report`."""
        out: dict[str, float] = {}
        for row in self.metrics:
            if row["metric"] not in HEADLINE:
                continue
            metric = SCREEN_PREFIX + row["metric"] if row["benchmark"].startswith(SCREEN_PREFIX) else row["metric"]
            key = metric if row["category"] == OVERALL else f"{metric}/{row['category']}"
            out[key] = float(row["value"]) if row["value"] is not None else math.nan
        return out


_CACHE_SIZE = 64


def adapter_key(adapter_dir: str | None, screen: float | None, full: bool) -> str | None:
    """A digest of the adapter's config and weights and of what is scored (None without an adapter, or
    unreadable files): the evaluator's result-cache key, and how requests are routed among actors."""
    import hashlib
    from pathlib import Path

    if adapter_dir is None:
        return None
    h = hashlib.sha256(f"{screen}|{full}".encode())
    try:
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            h.update((Path(adapter_dir) / name).read_bytes())
    except OSError:
        return None
    return h.hexdigest()


class Evaluator:
    """A base model loaded once, plus the evaluation sets; `evaluate` scores it with or without an adapter."""

    def __init__(self, spec: EvaluationSpec, base_model: str, *, judge: JudgeFn, judge_name: str,
                 over_refusal_judge: JudgeFn | None = None, over_refusal_judge_name: str = "refusal") -> None:
        from alignsweep.models.loading import load_model, load_tokenizer
        from alignsweep.models.refs import resolve_model

        self.spec = spec
        self.base_model = base_model
        path = resolve_model(base_model).path
        self.model = load_model(path)
        self.tokenizer = load_tokenizer(path)
        self.judge, self.judge_name = judge, judge_name
        self.over_refusal_judge = over_refusal_judge or judge
        self.over_refusal_judge_name = over_refusal_judge_name if over_refusal_judge else judge_name
        s, f, o = spec.safety, spec.fairness, spec.over_refusal
        self.hazards = limit_per_category(load_hazard_prompts(s.data), s.limit) if s.enabled else []
        self.bbq = limit_per_category(load_bbq(f.data), f.limit) if f.enabled else []
        self.look_alikes = limit_per_category(load_overrefusal_prompts(o.data), o.limit) if o.enabled else []
        u = spec.utility
        self.questions = limit_per_category(load_utility_questions(u.data), u.limit) if u.enabled else []
        self._screen_reference: dict[float, dict[str, float]] = {}
        # Byte-identical adapters score identically: trials that differ only in learning rate share
        # their step-0 control (same seed, same initialisation), so it is scored once.
        self._cache: dict[str, EvalResult] = {}

    def evaluate(self, adapter_dir: str | None, *, screen: float | None = None, full: bool = True) -> EvalResult:
        """Score the base (or base + adapter). `screen`: also report the fixed stratified subset's
        metrics (benchmarks `screen_*`); `full=False`: score only that subset (the cheap per-interval check)."""
        if not full and screen is None:
            raise ValueError("a screen-only evaluation needs a screen fraction")
        key = adapter_key(adapter_dir, screen, full)
        if key is not None and key in self._cache:
            return self._cache[key].copy()
        result = self._evaluate(adapter_dir, screen, full)
        if key is not None:
            self._cache[key] = result.copy()
            while len(self._cache) > _CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
        return result

    def _evaluate(self, adapter_dir: str | None, screen: float | None, full: bool) -> EvalResult:
        start = time.perf_counter()
        result = EvalResult()
        hazards = self.hazards if full else screen_subset(self.hazards, screen, id_attr="prompt_id")
        bbq = self.bbq if full else screen_subset(self.bbq, screen, id_attr="example_id")
        look_alikes = self.look_alikes if full else screen_subset(self.look_alikes, screen, id_attr="prompt_id")
        with attached(self.model, adapter_dir) as model:
            if hazards:
                items = self._safety(model, hazards)
                result.safety_items += items
                result.metrics += safe_rate_metrics(items) if full else []
            if look_alikes:
                items = self._over_refusal(model, look_alikes)
                result.safety_items += items
                result.metrics += over_refusal_metrics(items) if full else []
            if bbq:
                f = self.spec.fairness
                result.fairness_items = score_bbq(model, self.tokenizer, bbq, prompt=f.prompt,
                                                  continuation=f.continuation, extra_unknowns=f.extra_unknowns,
                                                  batch_size=f.batch_size)
                result.metrics += fairness_metrics(result.fairness_items) if full else []
            if self.questions and full:
                result.metrics += task_accuracy_metrics(model, self.tokenizer, self.questions)
        if screen is not None:
            result.metrics += self._screen_metrics(result, screen)
        result.seconds = time.perf_counter() - start
        return result

    def _screen_metrics(self, result: EvalResult, fraction: float) -> list[dict[str, Any]]:
        """Screen metrics from the subset of the items just scored (all of them in a screen-only run)."""
        hazard_ids = {p.prompt_id for p in screen_subset(self.hazards, fraction, id_attr="prompt_id")}
        bbq_ids = {b.example_id for b in screen_subset(self.bbq, fraction, id_attr="example_id")}
        look_ids = {f"{OVER_REFUSAL_ID_PREFIX}{p.label}/{p.prompt_id}"
                    for p in screen_subset(self.look_alikes, fraction, id_attr="prompt_id")}
        safety = [it for it in result.safety_items if it["prompt_id"] in hazard_ids]
        over = [it for it in result.safety_items if it["prompt_id"] in look_ids]
        fairness = [it for it in result.fairness_items if it["example_id"] in bbq_ids]
        return as_screen((safe_rate_metrics(safety) if safety else []) + (over_refusal_metrics(over) if over else [])
                         + (fairness_metrics(fairness) if fairness else []))

    def screen_reference(self, fraction: float) -> dict[str, float]:
        """The base model's screen metrics (flat), scored once per fraction: what a stopper compares against."""
        if fraction not in self._screen_reference:
            self._screen_reference[fraction] = self.evaluate(None, screen=fraction, full=False).flat()
        return self._screen_reference[fraction]

    def _safety(self, model: Any, hazards: list[Any]) -> list[dict[str, Any]]:
        responses, verdicts = self._respond_and_judge(model, hazards, self.judge)
        return safety_items(hazards, responses, verdicts, self.judge_name)

    def _over_refusal(self, model: Any, look_alikes: list[Any]) -> list[dict[str, Any]]:
        responses, verdicts = self._respond_and_judge(model, look_alikes, self.over_refusal_judge)
        return over_refusal_items(look_alikes, responses, verdicts, self.over_refusal_judge_name)

    def _respond_and_judge(self, model: Any, items: list[Any], judge: Any) -> tuple[list[str], list[Any]]:
        """Greedy replies to each item's prompt with the safety decoding settings, then one judge call."""
        s = self.spec.safety
        prompts = [p.prompt for p in items]
        responses = generate_responses(model, self.tokenizer, prompts, max_new_tokens=s.max_new_tokens,
                                       batch_size=s.batch_size)
        return responses, judge(list(zip(prompts, responses)))


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
    persist(results_dir, "metrics", metrics, trial_id=trial_id, step=step)
    if result.safety_items:
        persist(results_dir, "safety_items", result.safety_items, trial_id=trial_id, step=step)
    if result.fairness_items:
        persist(results_dir, "fairness_items", result.fairness_items, trial_id=trial_id, step=step)


def method_of(adapter_dir: str | None, method: str | None) -> str:
    """The `method` column of a checkpoint's records: `base` without an adapter, else the caller's name.

    The evaluators sit below the method registry, so they never guess a method from an adapter; callers
    name it (a trial its plan's method, `audit` via `trainables.methods.method_of_adapter`)."""
    if method:
        return method
    if adapter_dir is None:
        return "base"
    raise ValueError(f"adapter {adapter_dir!r}: its records need a method name (none was given)")


def local_judges(spec: EvaluationSpec) -> tuple[JudgeFn, str, JudgeFn, str]:
    """In-process judges (for `audit` and tests): (safety judge, name, over-refusal judge, name)."""
    from alignsweep.evaluators.judges import build_judge, build_judges

    safety = build_judges(spec.safety.judges, spec.safety.ensemble)
    over = build_judge(spec.over_refusal.judge)
    return safety.judge, safety.name, over.judge, over.name


