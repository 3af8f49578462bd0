"""Trial schedulers by name: how a sweep early-stops poor configurations.

Each entry builds a Ray Tune scheduler from the spec's `scheduler` section; `max_t` is the number of
evaluations a trial can reach, the unit every scheduler here counts in (`training_iteration`).
`alignment` wraps any other entry (`scheduler.then`) and adds stopping on the screened safety and
bias changes vs base; a scheduler that records why it stopped trials exposes `stop_reasons`.
"""

from __future__ import annotations

from typing import Any, Callable

from alignsweep.registry import Registry
from alignsweep.scheduling.rules import ALIGNMENT, AlignmentRule

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


@SCHEDULERS.register(ALIGNMENT)
def _alignment(spec: Any, max_t: int) -> Any:
    from alignsweep.scheduling.alignment_stopper import AlignmentStopper

    return AlignmentStopper(SCHEDULERS.get(spec.then)(spec, max_t), then=spec.then, metric=spec.metric,
                            rule=AlignmentRule.from_spec(spec), enforce=spec.enforce)
