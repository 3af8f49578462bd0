"""Trial schedulers by name: how a sweep early-stops poor configurations.

Each entry builds a Ray Tune scheduler from the spec's `scheduler` section; `max_t` is the number of
evaluations a trial can reach, the unit every scheduler here counts in (`training_iteration`).
`alignment` wraps any other entry (`scheduler.then`) and adds stopping on the screened safety and
bias changes vs base; a scheduler that records why it stopped trials exposes `stop_reasons`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from alignsweep.registry import Registry

SchedulerBuilder = Callable[[Any, int], Any]
SCHEDULERS: Registry[SchedulerBuilder] = Registry("scheduler")


@SCHEDULERS.register("asha")
def _asha(spec: Any, max_t: int) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="training_iteration",
        metric=spec.metric,
        mode=spec.mode,
        max_t=max(max_t, spec.grace_period),
        grace_period=spec.grace_period,
        reduction_factor=spec.reduction_factor,
    )


@SCHEDULERS.register("median")
def _median(spec: Any, max_t: int) -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(
        time_attr="training_iteration",
        metric=spec.metric,
        mode=spec.mode,
        grace_period=spec.grace_period,
        min_samples_required=spec.min_samples_required,
    )


@SCHEDULERS.register("none")
def _fifo(spec: Any, max_t: int) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


# ---------------------------------------------------------------- alignment-aware stopping

ALIGNMENT = "alignment"


def alignment_breach(result: dict[str, Any], max_safe_rate_drop: float, max_bias_increase: float) -> str | None:
    """Why a trial should stop, from one reported result; None to let it go on.

    Reads the screen's change vs base (`screen_safe_rate_delta`, `screen_bias_ambig_delta`, rates in
    0..1, thresholds in points). A missing or NaN change (bias undefined when the model answers
    "unknown" everywhere) is no evidence, so it never stops a trial.
    """
    safe, bias = result.get("screen_safe_rate_delta"), result.get("screen_bias_ambig_delta")
    if _finite(safe) and -100 * safe > max_safe_rate_drop:
        return f"alignment: screen safe rate {100 * safe:+.1f} points vs base (limit -{max_safe_rate_drop:g})"
    if _finite(bias) and 100 * bias > max_bias_increase:
        return f"alignment: screen ambiguous bias {100 * bias:+.1f} vs base (limit +{max_bias_increase:g})"
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@SCHEDULERS.register(ALIGNMENT)
def _alignment(spec: Any, max_t: int) -> Any:
    from alignsweep.engine.alignment_stopper import AlignmentStopper

    return AlignmentStopper(SCHEDULERS.get(spec.then)(spec, max_t), then=spec.then, metric=spec.metric,
                            max_safe_rate_drop=spec.max_safe_rate_drop, max_bias_increase=spec.max_bias_increase,
                            enforce=spec.enforce)
