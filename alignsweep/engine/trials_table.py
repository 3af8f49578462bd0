"""The `trials` table, written by the driver from Tune's own trial events.

One row per trial, replaced as it progresses (RUNNING → TERMINATED | ERROR), so a sweep that is still
running is queryable and a finished one says how each trial ended (`ended`: finished, stopped on loss,
stopped on alignment, failed) and at which step (`stop_step`). Base models
appear as trials with method `base`: the reference every change is measured against.
"""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback

from alignsweep.store import HYPERPARAMETERS, write_records
from alignsweep.trainables.plan import model_short_name

FINISHED, STOPPED_LOSS, STOPPED_ALIGNMENT, FAILED = "finished", "stopped_loss", "stopped_alignment", "failed"

#: Spec names of hyperparameters whose store column is spelled differently.
_COLUMN_NAMES = {"init": "prompt_init"}


def base_trial_id(model_ref: str) -> str:
    return f"{model_short_name(model_ref)}-base"


def base_trial_row(sweep: str, model_ref: str, wall_s: float, device: str | None = None) -> dict[str, Any]:
    """A base model's `trials` row; `device` is where its evaluator ran (a base is scored, not trained)."""
    return {
        "trial_id": base_trial_id(model_ref),
        "sweep": sweep,
        "base_model": model_ref,
        "family": model_short_name(model_ref),
        "method": "base",
        "status": "TERMINATED",
        "stopped_early": False,
        "ended": FINISHED,
        "stop_step": 0,
        "steps": 0,
        "wall_s": wall_s,
        "device": device,
    }


def ended_as(status: str, stopped: bool, stop_reason: str | None) -> str | None:
    """How a trial ended, from Tune's status and the scheduler's reason: `finished`, `stopped_loss`
    (a loss scheduler: ASHA, the median rule), `stopped_alignment`, `failed`; None while it runs."""
    if status == "ERROR":
        return FAILED
    if status != "TERMINATED":
        return None
    if not stopped:
        return FINISHED
    return STOPPED_ALIGNMENT if (stop_reason or "").startswith("alignment") else STOPPED_LOSS


def trial_row(plan: dict[str, Any], status: str, result: dict[str, Any] | None, checkpoint: str | None,
              error: str | None, wall_s: float | None, stop_reason: str | None = None) -> dict[str, Any]:
    """A `trials` row from a trial's plan and its latest reported result.

    `stop_reason` is the scheduler's (the alignment stopper records why, ASHA's stops included); a
    trial that ended short of its length without one recorded says `scheduler`.
    """
    result = result or {}
    steps, total = result.get("step"), result.get("total_steps")
    training = plan.get("training", {})
    stopped = bool(status == "TERMINATED" and steps is not None and total and steps < total)
    ended = ended_as(status, stopped, stop_reason)
    row: dict[str, Any] = {
        "trial_id": plan["variant_id"],
        "sweep": plan["sweep"],
        "base_model": plan["base_model"],
        "family": model_short_name(plan["base_model"]),
        "method": plan["method"],
        "status": status,
        "stopped_early": stopped,
        "stop_reason": (stop_reason or "scheduler") if stopped else (stop_reason if stop_reason and "would stop" in stop_reason else None),
        "ended": ended,
        "stop_step": steps if ended is not None else None,
        "trainable_params": result.get("trainable_params"),
        "total_params": result.get("total_params"),
        "steps": steps,
        "train_loss": result.get("loss"),
        "wall_s": wall_s,
        "checkpoint": checkpoint,
        "device": result.get("device"),
        "error": error,
        "learning_rate": plan["learning_rate"],
        "epochs": plan.get("epochs"),
        "max_steps": plan.get("max_steps"),
        "batch_size": training.get("batch_size"),
        "weight_decay": training.get("weight_decay"),
        "seed": plan["seed"],
    }
    for name, value in plan["hyperparameters"].items():
        column = _COLUMN_NAMES.get(name, name)
        if column in HYPERPARAMETERS or value is not None:
            row[column] = value
    return row


def checkpoint_uri(checkpoint: Any) -> str | None:
    """A local path as is; on object storage Tune's path has no scheme (`bucket/key`), so add it back."""
    if checkpoint is None:
        return None
    kind = getattr(getattr(checkpoint, "filesystem", None), "type_name", "local")
    return checkpoint.path if kind == "local" else f"{_SCHEMES.get(kind, kind)}://{checkpoint.path}"


_SCHEMES = {"gcs": "gs"}  # pyarrow's file system name → its URI scheme, where they differ


class TrialsTableCallback(Callback):
    """Tune callback keeping each trial's `trials` row current."""

    def __init__(self, sweep_dir: str, stop_reasons: dict[str, str] | None = None) -> None:
        self.sweep_dir = sweep_dir
        self.started: dict[str, float] = {}
        self.stop_reasons = stop_reasons if stop_reasons is not None else {}  # shared with the scheduler

    def _write(self, trial: Any, status: str, error: str | None = None) -> None:
        plan = trial.config.get("plan")
        if plan is None:
            return
        start = self.started.setdefault(trial.trial_id, time.time())
        checkpoint = checkpoint_uri(trial.checkpoint)
        row = trial_row(plan, status, trial.last_result, checkpoint, error, time.time() - start,
                        self.stop_reasons.get(plan["variant_id"]))
        write_records(self.sweep_dir, "trials", [row], trial_id=plan["variant_id"])

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.started[trial.trial_id] = time.time()
        self._write(trial, "RUNNING")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._write(trial, "RUNNING")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write(trial, "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write(trial, "ERROR", error=str(trial.error_file or "trial failed"))
