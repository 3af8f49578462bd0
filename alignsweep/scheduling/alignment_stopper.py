"""The alignment-aware stopper: Tune's scheduler interface around any registered scheduler.

Kept apart from `schedulers` so that validating a spec never imports Ray Tune; the registry entry
`alignment` imports this module only when a sweep is built.
"""

from __future__ import annotations

import math
from typing import Any

from ray import cloudpickle
from ray.tune.schedulers import TrialScheduler

from alignsweep.scheduling.grouped import restore_inner, save_inner
from alignsweep.scheduling.rules import AlignmentRule


class AlignmentStopper(TrialScheduler):
    """A Tune scheduler that ends a trial whose screened alignment fell past the spec's X / Y beyond
    the screen's noise (`AlignmentRule`: a one-sided bound, after a warm-up, for `patience` screens), and
    otherwise defers to an inner scheduler (ASHA on loss by default) for every decision.

    Why a wrapper rather than a `tune.Stopper`: a scheduler sees every result before the trial goes
    on, composes with ASHA's own STOP/PAUSE decisions, and one object owns the reasons. `stop_reasons`
    (variant id → reason, the inner scheduler's stops included) is what the trials table records;
    with `enforce=False` reasons are recorded as "would stop" and nothing is stopped (a shadow run).
    """

    def __init__(self, inner: Any, *, then: str, metric: str, rule: AlignmentRule, enforce: bool = True) -> None:
        super().__init__()
        self.inner, self.then, self.loss_metric = inner, then, metric
        self.rule, self.enforce = rule, enforce
        self.stop_reasons: dict[str, str] = {}

    @property
    def metric(self) -> Any:
        return self.inner.metric

    @property
    def supports_buffered_results(self) -> bool:
        return self.inner.supports_buffered_results

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return self.inner.set_search_properties(metric, mode, **spec)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.inner.on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self.inner.on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        key = _variant(trial)
        reason = self.rule.check(key, result)
        done = result.get("step") is not None and result.get("step") >= (result.get("total_steps") or math.inf)
        if reason and not done:
            if self.enforce:
                self.stop_reasons[key] = reason
                return self.STOP
            self.stop_reasons.setdefault(key, f"would stop at step {result.get('step')}: {reason}")
        decision = self.inner.on_trial_result(tune_controller, trial, result)
        if decision == self.STOP and not done:  # the inner's own reason (its group) where it gives one
            inner = getattr(self.inner, "stop_reasons", None) or {}
            self.stop_reasons.setdefault(key, inner.get(key) or f"{self.then}: {self.loss_metric} behind its rung")
        return decision

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        # A trial this stopper ended must not set the inner scheduler's bar: trials that lose their
        # alignment fastest often have the lowest loss, and ASHA would cut every other trial against them.
        if self.stop_reasons.get(_variant(trial), "").startswith("alignment"):
            self.inner.on_trial_remove(tune_controller, trial)
        else:
            self.inner.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self.inner.on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        return self.inner.choose_trial_to_run(tune_controller)

    def debug_string(self) -> str:
        r = self.rule
        return (f"AlignmentStopper(X={r.x:g}, Y={r.y:g}, z={r.z:g}, patience={r.patience}, warmup={r.warmup:g}) "
                f"over {self.inner.debug_string()}")

    def save(self, checkpoint_path: str) -> None:
        """The inner scheduler's state (every group's), the rule's streaks and the reasons, in one file."""
        state = {"inner": save_inner(self.inner), "streak": self.rule.streak, "stop_reasons": self.stop_reasons}
        with open(checkpoint_path, "wb") as out:
            cloudpickle.dump(state, out)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as source:
            state = cloudpickle.load(source)
        self.inner = restore_inner(self.inner, state["inner"])
        self.rule.streak = dict(state["streak"])
        self.stop_reasons.clear()  # in place: the trials table holds this dict
        self.stop_reasons.update(state["stop_reasons"])


def _variant(trial: Any) -> str:
    plan = (getattr(trial, "config", None) or {}).get("plan") or {}
    return plan.get("variant_id") or str(getattr(trial, "trial_id", trial))
