"""Every trial ends with a full evaluation of its last checkpoint, whether it finished or was stopped.

Why here, on the driver: Tune stops a trial between two results (the scheduler's STOP), so the
trainable never learns that its last report was its last; with the alignment stopper that report
scored only the screen. The driver does know: `on_trial_complete` sees the trial's last result and
its last checkpoint. `FinalEvaluationCallback` hands each stopped trial whose last evaluation was a
screen to a driver thread that scores that checkpoint fully (`evaluators.actors.score_checkpoint`,
the same path as every other evaluation), stored at that step: the step's `metrics` file is replaced
by one holding the full evaluation's rows plus every row already stored there (the screen the
stopper acted on, exactly as it saw it, and the trial's held-out loss). Tune's loop only submits;
`on_experiment_end` waits for what is in flight.

`ensure_final_evaluations` is the safety net `run_sweep` runs after `fit()`: it scores every ended
trial the store still lacks a full evaluation for at its last step (one whose evaluation failed, or
one stopped before a driver crash: `alignsweep resume` restores finished trials without replaying
their events). Both check the store first, so nothing is scored twice, and a repeat would only
replace the (trial, step) files with the same rows.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from ray.tune import Callback

from alignsweep.store import METRICS, file_name
from alignsweep.store import fs as store_fs

logger = logging.getLogger(__name__)

#: Rows a trial stores beside its evaluator's (`peft_trial.utility_rows`): no sign of a full evaluation.
_TRIAL_ROWS = {("utility", "heldout_loss")}
_ROW_FIELDS = ["benchmark", "category", "metric", "value", "n"]


def stored_rows(sweep_dir: str, trial_id: str, step: int) -> list[dict[str, Any]]:
    """The `metrics` rows stored for (trial, step), without the columns the writer fills in."""
    fs, root = store_fs.resolve(sweep_dir)
    data = store_fs.read_bytes(fs, store_fs.join(root, file_name(METRICS, trial_id, step)))
    if data is None:
        return []
    return pq.read_table(pa.BufferReader(data), columns=_ROW_FIELDS).to_pylist()


def is_full(rows: list[dict[str, Any]]) -> bool:
    """Whether rows of one (trial, step) hold a full evaluation: an evaluator row that is not a screen's."""
    return any(not r["benchmark"].startswith("screen_") and (r["benchmark"], r["metric"]) not in _TRIAL_ROWS
               for r in rows)


def has_full_evaluation(sweep_dir: str, trial_id: str, step: int) -> bool:
    return is_full(stored_rows(sweep_dir, trial_id, step))


def needs_final(plan: dict[str, Any] | None, result: dict[str, Any] | None, checkpoint: Any) -> bool:
    """A trial that ended with a checkpoint whose last evaluation (step > 0) scored only the screen."""
    result = result or {}
    return bool(plan and checkpoint is not None and (result.get("step") or 0) > 0
                and result.get("full_evaluation") is False)


def score_final(sweep_dir: str, plan: dict[str, Any], result: dict[str, Any], checkpoint: Any) -> int | None:
    """Fully score the trial's last checkpoint unless the store already has it, keeping the rows stored
    at that step; the step scored, or None."""
    from alignsweep.evaluators.actors import score_checkpoint
    from alignsweep.evaluators.payload import AdapterPayload

    with checkpoint.as_directory() as directory:  # Tune's persisted copy, local to the driver
        step = _checkpoint_step(directory, result)
        kept = stored_rows(sweep_dir, plan["variant_id"], step)
        if is_full(kept):
            return None
        adapter = AdapterPayload.read(directory)  # the evaluator gets the content, not this path
    score_checkpoint(base_model=plan["base_model"], adapter=adapter, trial_id=plan["variant_id"],
                     step=step, sweep=plan["sweep"], results_dir=sweep_dir, method=plan["method"],
                     full=True, extra_rows=kept)
    return step


def _checkpoint_step(directory: str, result: dict[str, Any]) -> int:
    """The step the checkpoint itself says it holds (the trainer writes it), else the last result's."""
    from alignsweep.trainables.trainer import checkpoint_step

    step = checkpoint_step(directory)
    return int(result["step"]) if step is None else step


class FinalEvaluationCallback(Callback):
    """Scores each stopped trial's last checkpoint fully, on driver threads, as the trial ends."""

    def __init__(self, sweep_dir: str, workers: int = 2) -> None:
        self.sweep_dir, self.workers = sweep_dir, workers
        self._pool: ThreadPoolExecutor | None = None
        self._jobs: dict[str, Future] = {}

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks with the Tuner
        return {**self.__dict__, "_pool": None, "_jobs": {}}

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        plan = trial.config.get("plan")
        result = dict(trial.last_result or {})
        if not needs_final(plan, result, trial.checkpoint) or plan["variant_id"] in self._jobs:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="alignsweep-final")
        self._jobs[plan["variant_id"]] = self._pool.submit(score_final, self.sweep_dir, plan, result, trial.checkpoint)

    def wait(self) -> dict[str, BaseException]:
        """Wait for every submitted evaluation; the failures by trial (`ensure_final_evaluations` retries them)."""
        failures = {}
        for trial_id, job in self._jobs.items():
            try:
                job.result()
            except Exception as exc:  # noqa: BLE001 — reported, and retried after fit()
                failures[trial_id] = exc
                logger.warning("final evaluation of %s failed (retried after the sweep): %s", trial_id, exc)
        return failures

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.wait()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def ensure_final_evaluations(sweep_dir: str, results: Any) -> list[str]:
    """After `fit()`: fully score every ended trial still missing its final evaluation (see the module
    docstring); `results` is Tune's ResultGrid. Returns the trial ids scored now; a failure raises."""
    scored = []
    for res in results:
        plan = (res.config or {}).get("plan")
        if res.error is not None or not needs_final(plan, res.metrics, res.checkpoint):
            continue
        if score_final(sweep_dir, plan, dict(res.metrics), res.checkpoint) is not None:
            scored.append(plan["variant_id"])
    return scored
