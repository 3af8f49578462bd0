"""Grouped early stopping: a loss scheduler never compares trials of different base models or PEFT
methods; a group with one configuration is never stopped on loss; its state survives save/restore.
No Ray workers here: the schedulers are driven directly with fake trials, as Tune's controller would."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from alignsweep.engine.trials_table import ended_as, trial_row
from alignsweep.errors import InputError
from alignsweep.scheduling import build_scheduler
from alignsweep.spec.config import SchedulerSpec, validate_spec

CONTINUE, STOP = "CONTINUE", "STOP"


def _trial(tid: str, model: str = "tiny:llama", method: str = "lora", lr: float = 1e-3, seed: int = 0) -> Any:
    plan = {"variant_id": tid, "base_model": model, "method": method, "learning_rate": lr, "seed": seed,
            "hyperparameters": {}, "sweep": "s"}
    return _FakeTrial(trial_id=tid, config={"plan": plan})


class _FakeTrial(SimpleNamespace):
    """What a scheduler reads of a Tune trial; hashable by identity, like one (the median rule keys by trial)."""

    __hash__ = object.__hash__
    __eq__ = object.__eq__


class _Controller:
    """What Tune's median rule asks of the controller: no other trials waiting."""

    def get_live_trials(self) -> list:
        return []

    def get_trials(self) -> list:
        return []


def _scheduler(name: str = "asha", group_by: list[str] | None = None, **spec: Any) -> Any:
    fields = {"name": name, "grace_period": 1, "reduction_factor": 2, **spec}
    if group_by is not None:
        fields["group_by"] = group_by
    scheduler = build_scheduler(SchedulerSpec(**fields), 4)
    scheduler.set_search_properties(None, None)
    return scheduler


def _result(it: int, loss: float, total_steps: int = 8) -> dict[str, Any]:
    return {"training_iteration": it, "loss": loss, "step": 2 * it, "total_steps": total_steps}


def _feed(scheduler: Any, events: list[tuple[Any, int, float]]) -> dict[str, list[str]]:
    """Add each trial once, then hand the results over in order; the decisions by trial id."""
    seen: dict[str, list[str]] = {}
    for trial, _, _ in events:
        if trial.trial_id not in seen:
            seen[trial.trial_id] = []
            scheduler.on_trial_add(_Controller(), trial)
    for trial, it, loss in events:
        if STOP not in seen[trial.trial_id]:  # Tune sends a stopped trial's scheduler nothing more
            seen[trial.trial_id].append(scheduler.on_trial_result(_Controller(), trial, _result(it, loss)))
    return seen


# Group A: llama LoRA, losses near 1. Group B: qwen2 prompt tuning, every loss 100× worse.
A = [_trial(f"a{i}", lr=10.0 ** -(i + 2)) for i in range(4)]
B = [_trial(f"b{i}", model="tiny:qwen2", method="prompt_tuning", lr=10.0 ** -(i + 1)) for i in range(3)]
A_LOSSES = [1.0, 1.3, 0.9, 1.2]
B_LOSSES = [100.0, 130.0, 90.0]


def _interleaved() -> list[tuple[Any, int, float]]:
    events = []
    for i in range(4):
        events.append((A[i], 1, A_LOSSES[i]))
        if i < 3:
            events.append((B[i], 1, B_LOSSES[i]))
    return events


def test_grouped_asha_never_compares_across_groups() -> None:
    grouped = _feed(_scheduler(), _interleaved())
    # Each group decides exactly as an ASHA that saw only that group's trials.
    alone_a = _feed(_scheduler(group_by=[]), [(t, 1, x) for t, x in zip(A, A_LOSSES)])
    alone_b = _feed(_scheduler(group_by=[]), [(t, 1, x) for t, x in zip(B, B_LOSSES)])
    assert {k: v for k, v in grouped.items() if k.startswith("a")} == alone_a
    assert {k: v for k, v in grouped.items() if k.startswith("b")} == alone_b
    # The worse group keeps its best trials: the first to reach the rung and the best of it (b2, 90).
    assert grouped["b0"] == [CONTINUE] and grouped["b2"] == [CONTINUE] and grouped["b1"] == [STOP]
    # Ranked together (today's global ASHA), every trial of the 100× group is cut.
    together = _feed(_scheduler(group_by=[]), _interleaved())
    assert all(together[t.trial_id] == [STOP] for t in B)


def test_group_by_method_only_ranks_across_models() -> None:
    by_method = _feed(_scheduler(group_by=["method"]), _interleaved())
    by_model = _feed(_scheduler(group_by=["model"]), _interleaved())
    assert by_method == by_model == _feed(_scheduler(), _interleaved())  # A and B differ in both
    same_method = [_trial("m0"), _trial("m1", model="tiny:qwen2", lr=1e-2)]
    events = [(same_method[0], 1, 1.0), (same_method[1], 1, 100.0)]
    assert _feed(_scheduler(group_by=["method"]), events)["m1"] == [STOP]
    assert _feed(_scheduler(group_by=["model"]), events)["m1"] == [CONTINUE]


@pytest.mark.parametrize("name", ["asha", "median"])
def test_a_group_of_one_configuration_is_never_stopped_on_loss(name: str) -> None:
    # Two seeds of one configuration, the second far worse: comparing them would compare noise.
    seeds = [_trial("s0", seed=0), _trial("s1", seed=1)]
    extra = {"min_samples_required": 1} if name == "median" else {}
    events = [(seeds[0], 1, 1.0), (seeds[1], 1, 50.0), (seeds[0], 2, 0.9), (seeds[1], 2, 50.0)]
    assert _feed(_scheduler(name, **extra), events)["s1"] == [CONTINUE, CONTINUE]
    # The same trials ranked by plain (ungrouped) scheduling: the worse seed is cut.
    assert STOP in _feed(_scheduler(name, group_by=[], **extra), events)["s1"]
    # A second configuration in the group (another learning rate) makes losses comparable again.
    other = _trial("c1", lr=1e-1)
    assert STOP in _feed(_scheduler(name, **extra), events[:1] + [(other, 1, 50.0), (other, 2, 50.0)])["c1"]


def test_stop_reason_names_the_group_and_the_alignment_stopper_keeps_it() -> None:
    scheduler = _scheduler()
    _feed(scheduler, _interleaved())
    assert scheduler.stop_reasons["b1"] == "asha: loss behind its rung among model=tiny:qwen2, method=prompt_tuning"
    stopper = _scheduler("alignment", then="asha", screen_warmup=0)
    _feed(stopper, _interleaved())
    assert stopper.stop_reasons["b1"].startswith("asha: loss behind its rung among model=tiny:qwen2")
    assert "a0" not in stopper.stop_reasons and "b0" not in stopper.stop_reasons


@pytest.mark.parametrize("name", ["asha", "median", "alignment"])
def test_save_restore_round_trips_every_group(tmp_path: Path, name: str) -> None:
    extra = {"min_samples_required": 1} if name == "median" else {}
    first = _interleaved()
    original = _scheduler(name, **extra)
    _feed(original, first)
    original.save(str(tmp_path / "state"))

    restored = _scheduler(name, **extra)
    restored.restore(str(tmp_path / "state"))
    fresh = _scheduler(name, **extra)
    # A newcomer to each group, as bad as its group's worst: only a scheduler that remembers the
    # group's earlier results can cut it.
    late = [(_trial("a9", lr=0.5), 1, 5.0), (_trial("b9", model="tiny:qwen2", method="prompt_tuning", lr=0.5), 1, 500.0)]
    assert _feed(restored, late) == _feed(original, late) == {"a9": [STOP], "b9": [STOP]}
    assert _feed(fresh, late) == {"a9": [CONTINUE], "b9": [CONTINUE]}
    assert restored.stop_reasons == original.stop_reasons and "b1" in restored.stop_reasons
    groups = (restored.inner if name == "alignment" else restored).groups
    assert set(groups) == {("tiny:llama", "lora"), ("tiny:qwen2", "prompt_tuning")}


def test_scheduler_state_travels_in_tunes_callback_checkpoint() -> None:
    """What `alignsweep resume` relies on: Tune saves callbacks' `get_state()` with the experiment and
    hands it to `set_state()` on restore (it never calls the scheduler's own save/restore)."""
    from alignsweep.engine.scheduler_state import SchedulerStateCallback

    original = _scheduler("alignment", then="asha")
    _feed(original, _interleaved())
    state = SchedulerStateCallback(original).get_state()
    resumed = _scheduler("alignment", then="asha")
    SchedulerStateCallback(resumed).set_state(state)
    late = [(_trial("a9", lr=0.5), 1, 5.0)]
    assert _feed(resumed, late) == {"a9": [STOP]} and resumed.stop_reasons["b1"] == original.stop_reasons["b1"]
    assert SchedulerStateCallback(_scheduler("none")).get_state() is None  # FIFO: nothing to keep


def test_build_scheduler_groups_the_loss_scheduler_only() -> None:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from alignsweep.scheduling.alignment_stopper import AlignmentStopper
    from alignsweep.scheduling.grouped import GroupedScheduler

    assert isinstance(_scheduler("asha"), GroupedScheduler)
    assert isinstance(_scheduler("asha", group_by=[]), ASHAScheduler)
    assert isinstance(_scheduler("none"), FIFOScheduler)
    stopper = _scheduler("alignment", then="median")
    assert isinstance(stopper, AlignmentStopper) and isinstance(stopper.inner, GroupedScheduler)
    assert stopper.metric == "loss" and stopper.inner.group_by == ["model", "method"]


def test_planned_trials_size_the_groups_before_tune_adds_them() -> None:
    spec = SchedulerSpec(name="alignment", then="asha")
    plans = [_trial("p0").config["plan"], _trial("p1", lr=1e-2).config["plan"],
             _trial("p2", method="ia3").config["plan"], _trial("p3", method="ia3", seed=1).config["plan"]]
    planned = build_scheduler(spec, 4, plans).inner
    assert planned.ranked(("tiny:llama", "lora"))  # two learning rates
    assert not planned.ranked(("tiny:llama", "ia3"))  # two seeds of one configuration
    assert not build_scheduler(spec, 4).inner.ranked(("tiny:llama", "lora"))


def test_spec_group_by_default_and_clear_errors() -> None:
    raw = {"name": "s", "models": ["tiny:llama"], "methods": ["lora"]}
    assert validate_spec(raw).scheduler.group_by == ["model", "method"]
    assert validate_spec({**raw, "scheduler": {"group_by": []}}).scheduler.group_by == []
    assert validate_spec({**raw, "scheduler": {"group_by": "method"}}).scheduler.group_by == ["method"]
    with pytest.raises(InputError, match=r"scheduler.group_by: unknown group key 'learning_rate' \(allowed: model, method"):
        validate_spec({**raw, "scheduler": {"group_by": ["model", "learning_rate"]}})
    with pytest.raises(InputError, match="scheduler.group_by: group key listed twice"):
        validate_spec({**raw, "scheduler": {"group_by": ["method", "method"]}})


def test_evaluation_final_defaults_to_all() -> None:
    raw = {"name": "s", "models": ["tiny:llama"], "methods": ["lora"], "evaluation": {}}
    assert validate_spec(raw).evaluation_spec().final == "all"
    assert validate_spec({**raw, "evaluation": {"final": "finished"}}).evaluation_spec().final == "finished"
    with pytest.raises(InputError, match="evaluation.final"):
        validate_spec({**raw, "evaluation": {"final": "some"}})


# ---------------------------------------------------------------- how a trial ended


def _plan_config() -> dict[str, Any]:
    return {"variant_id": "v", "sweep": "s", "base_model": "tiny:llama", "method": "lora", "learning_rate": 1e-3,
            "seed": 0, "hyperparameters": {}, "training": {}}


@pytest.mark.parametrize("status, step, reason, ended, stop_step", [
    ("RUNNING", 4, None, None, None),
    ("TERMINATED", 8, None, "finished", 8),
    ("TERMINATED", 8, "would stop at step 4: alignment: screen safe rate -20.0", "finished", 8),
    ("TERMINATED", 4, "asha: loss behind its rung among model=tiny:llama, method=lora", "stopped_loss", 4),
    ("TERMINATED", 4, None, "stopped_loss", 4),
    ("TERMINATED", 6, "alignment: screen safe rate -20.0 points vs base", "stopped_alignment", 6),
    ("ERROR", 2, None, "failed", 2),
])
def test_trials_row_records_how_and_when_a_trial_ended(status: str, step: int, reason: str | None,
                                                        ended: str | None, stop_step: int | None) -> None:
    row = trial_row(_plan_config(), status, {"step": step, "total_steps": 8}, None, None, 1.0, reason)
    assert (row["ended"], row["stop_step"]) == (ended, stop_step)
    assert row["stopped_early"] == (ended in ("stopped_loss", "stopped_alignment"))
    assert ended_as(status, row["stopped_early"], reason) == ended
