"""Tune's MLflow and W&B logger callbacks, set up for alignsweep trials (the spec's `tracking:`).

One tracker run per trial, named after the trial (`llama-lora-1a2b3c4d`), with:
- parameters: the trial's flat hyperparameters (`model`, `method`, `learning_rate`, `seed`, the length,
  `batch_size` and the method's own, e.g. `r`), not Tune's nested `{plan, context}` config;
- metrics at each evaluation, at the trial's optimizer step: `loss` and the catalog's headline metrics
  overall (`safe_rate`, `over_refusal_rate`, `accuracy`, `bias_ambig`, …; `screen_*` for screened
  evaluations). Per-category values and bookkeeping (timestamps, node ids) stay in the results store.
In MLflow the trial runs are children of the sweep's own run (`engine.tracking_runs.sweep_run`), which
holds the spec as run and later the report; in W&B they share the sweep's name as their group.

Why subclasses rather than Tune's callbacks as they are: those log the nested config (`plan/...`,
`context/results_dir`) and every numeric result key (~60 per report here), at Tune's iteration count.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ray.air.constants import TRAINING_ITERATION
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.air.integrations.wandb import WandbLoggerCallback

from alignsweep.engine.tracking_runs import (ROLE_TAG, PARENT_TAG, SWEEP_TAG, TRIAL_TAG, find_run, mlflow_client,
                                             mlflow_experiment, sweep_run, wandb_settings)
from alignsweep.evaluators.evaluate import headline_metrics
from alignsweep.evaluators.screen import SCREEN_PREFIX
from alignsweep.spec.tracking import TrackingSpec, mlflow_uri
from alignsweep.trainables.plan import model_short_name

LOSS = "loss"  # the trial's mean training loss since its last report (peft_trial)


def trial_params(plan: dict[str, Any]) -> dict[str, Any]:
    """A trial's hyperparameters as one flat, readable mapping (a TrialPlan's config → tracker params)."""
    params: dict[str, Any] = {"model": plan["base_model"], "method": plan["method"],
                              "learning_rate": plan["learning_rate"], "seed": plan["seed"]}
    length = "max_steps" if plan.get("max_steps") is not None else "epochs"
    params[length] = plan[length]
    params["batch_size"] = plan.get("training", {}).get("batch_size")
    for key, value in sorted(plan["hyperparameters"].items()):
        params[f"{plan['method']}.{key}" if key in params else key] = value
    return {k: v for k, v in params.items() if v is not None}  # an unset option is no parameter


def tracked_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The numbers of one Tune result a tracker gets: the loss and each headline metric's overall value
    (screened ones as `screen_<metric>`). Not yet measured (NaN) is left out rather than charted."""
    headline = headline_metrics()  # read per result: task files add their metrics during preflight
    names = (LOSS, *headline, *(SCREEN_PREFIX + m for m in headline))
    return {k: float(result[k]) for k in names
            if isinstance(result.get(k), (int, float)) and not isinstance(result[k], bool) and math.isfinite(result[k])}


def _step(iteration: int, result: dict[str, Any]) -> int:
    """The trial's optimizer step (what the store's `step` column holds); Tune's iteration if absent."""
    step = result.get("step")
    return int(step) if isinstance(step, int) else iteration


class MLflowTrials(MLflowLoggerCallback):
    """Tune's MLflow logger: one child run per trial under the sweep's run, found again on resume."""

    def __init__(self, tracking: TrackingSpec, sweep: str, spec_text: str) -> None:
        super().__init__(tracking_uri=mlflow_uri(tracking), experiment_name=tracking.experiment(sweep),
                         tags={SWEEP_TAG: sweep, ROLE_TAG: "trial"})
        self.tracking, self.sweep, self.spec_text = tracking, sweep, spec_text
        self.parent: str | None = None

    def setup(self, *args: Any, **kwargs: Any) -> None:
        super().setup(*args, **kwargs)
        client, experiment_id = mlflow_experiment(self.tracking, self.sweep)
        self.parent = sweep_run(client, experiment_id, self.sweep)
        client.update_run(self.parent, status="RUNNING")
        client.log_text(self.parent, self.spec_text, "sweep.yaml")
        self.tags = {**(self.tags or {}), PARENT_TAG: self.parent}

    def log_trial_start(self, trial: Any) -> None:
        plan = trial.config["plan"]
        if trial not in self._trial_runs:  # a resumed sweep (a new driver) finds the trial's run by its tag
            client, experiment_id = mlflow_experiment(self.tracking, self.sweep)
            found = find_run(client, experiment_id, {SWEEP_TAG: self.sweep, TRIAL_TAG: plan["variant_id"]})
            if found is not None:
                client.update_run(found, status="RUNNING")
            else:
                tags = {**self.tags, TRIAL_TAG: plan["variant_id"], "method": plan["method"],
                        "model": plan["base_model"]}
                found = self.mlflow_util.start_run(tags=tags, run_name=plan["variant_id"]).info.run_id
            self._trial_runs[trial] = found
        self.mlflow_util.log_params(run_id=self._trial_runs[trial], params_to_log=trial_params(plan))

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        if trial not in self._trial_runs:
            self.log_trial_start(trial)
        # One batch per result (Tune's util sends one request per metric, each after a run-exists check).
        from mlflow.entities import Metric

        client = mlflow_client(self.tracking)
        now, step = int(time.time() * 1000), _step(iteration, result)
        client.log_batch(self._trial_runs[trial], metrics=[Metric(k, v, now, step) for k, v in tracked_metrics(result).items()])

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        if self.parent is not None:
            mlflow_client(self.tracking).set_terminated(self.parent, status="FINISHED")


class WandbTrials(WandbLoggerCallback):
    """Tune's W&B logger: one run per trial (id = Tune's trial id), grouped under the sweep's name.

    Each trial's run is written by its own Ray actor (W&B wants a process per run); Tune waits for
    those actors to finish at the experiment's end, so the run folders are complete when fit() returns.
    """

    def __init__(self, tracking: TrackingSpec, sweep: str, sweep_dir: str) -> None:
        settings = wandb_settings(tracking, sweep, sweep_dir)
        # silent: each trial's actor would print W&B's run banner and summary into the live panel;
        # the driver prints one line about where the runs went instead (`tracking_runs.describe_runs`).
        super().__init__(project=settings.pop("project"), group=sweep, settings={"silent": True, "console": "off"},
                         **settings)

    def setup(self, *args: Any, **kwargs: Any) -> None:
        # Tune asks for an API key unless the *environment* says offline; the spec's mode counts too
        # (project and group are set already, the rest of Tune's setup is that key).
        if self.kwargs.get("mode") not in ("offline", "disabled"):
            super().setup(*args, **kwargs)

    def log_trial_start(self, trial: Any) -> None:
        plan = trial.config["plan"]
        # Tune builds `wandb.init` keywords from the nested trial config, then applies these on top:
        # the flat hyperparameters replace it, the method and model become the run's tags.
        self.kwargs.update(config=trial_params(plan), tags=[plan["method"], model_short_name(plan["base_model"])],
                           name=plan["variant_id"])
        super().log_trial_start(trial)

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        # W&B's x-axis is the logged TRAINING_ITERATION: the optimizer step, as in MLflow and the store.
        super().log_trial_result(iteration, trial, {**tracked_metrics(result), TRAINING_ITERATION: _step(iteration, result)})


def tracking_callbacks(tracking: TrackingSpec | None, sweep: str, sweep_dir: str, spec_text: str) -> list[Any]:
    """The Tune callbacks for the spec's trackers (none without a `tracking:` section)."""
    if tracking is None:
        return []
    out: list[Any] = []
    if tracking.mlflow is not None:
        out.append(MLflowTrials(tracking, sweep, spec_text))
    if tracking.wandb is not None:
        out.append(WandbTrials(tracking, sweep, sweep_dir))
    return out
