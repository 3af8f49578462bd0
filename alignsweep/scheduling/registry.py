"""Trial schedulers by name: how a sweep early-stops poor configurations.

Each entry builds a Ray Tune scheduler from the spec's `scheduler` section; `max_t` is the number of
evaluations a trial can reach, the unit every scheduler here counts in (`training_iteration`).
`alignment` wraps any other entry (`scheduler.then`) and adds stopping on the screened safety and
bias changes vs base; a scheduler that records why it stopped trials exposes `stop_reasons`.
Entries build one ungrouped scheduler; `build_scheduler` is what a sweep runs: the loss scheduler
(the named one, or the alignment stopper's `then`) split by `scheduler.group_by`, so a trial is only
ever ranked against trials of its own base model and PEFT method (`grouped.GroupedScheduler`).
"""

from __future__ import annotations

import functools
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

    return AlignmentStopper(grouped(spec, spec.then, max_t), then=spec.then, metric=spec.metric,
                            rule=AlignmentRule.from_spec(spec), enforce=spec.enforce)


def grouped(spec: Any, name: str, max_t: int) -> Any:
    """The loss scheduler `name`, one per group of `spec.group_by` (ungrouped for `[]` and for `none`,
    which stops nothing)."""
    group_by = list(getattr(spec, "group_by", None) or [])
    if not group_by or name == "none":
        return SCHEDULERS.get(name)(spec, max_t)
    from alignsweep.scheduling.grouped import GroupedScheduler

    return GroupedScheduler(functools.partial(SCHEDULERS.get(name), spec, max_t), group_by, name=name,
                            metric=spec.metric)


def build_scheduler(spec: Any, max_t: int, plans: list[dict[str, Any]] | None = None) -> Any:
    """The scheduler a sweep runs, from its `scheduler` section (see the module docstring); `plans`
    (every trial's `TrialPlan.to_config()`) size the groups before Tune adds any trial."""
    scheduler = SCHEDULERS.get(ALIGNMENT)(spec, max_t) if spec.name == ALIGNMENT else grouped(spec, spec.name, max_t)
    loss = getattr(scheduler, "inner", scheduler)
    if plans and hasattr(loss, "expect"):
        loss.expect(plans)
    return scheduler
