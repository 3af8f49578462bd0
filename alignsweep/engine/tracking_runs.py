"""Tracker runs that are not trials: the sweep's own MLflow run, the report, an audit.

Why here and not in the callbacks: `alignsweep report` and `alignsweep audit` log after the sweep,
in another process, and must find the same sweep run the trials hang under. Runs are found by their
tags (`alignsweep.sweep`, `alignsweep.role`, `alignsweep.trial`), so a rerun, a resume or a second
`report` reuses a run instead of adding one. Clients are imported inside the functions: both are
optional extras, checked by `spec.tracking.check_tracking` before anything here runs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from alignsweep.spec.tracking import TrackingSpec, mlflow_uri, wandb_mode

SWEEP_TAG, ROLE_TAG, TRIAL_TAG = "alignsweep.sweep", "alignsweep.role", "alignsweep.trial"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests a run under its parent


def mlflow_client(tracking: TrackingSpec) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_uri(tracking))


def mlflow_experiment(tracking: TrackingSpec, sweep: str) -> tuple[Any, str]:
    """(MlflowClient, experiment id) for the spec's experiment, created when it does not exist yet."""
    client = mlflow_client(tracking)
    name = tracking.experiment(sweep)
    found = client.get_experiment_by_name(name)
    return client, found.experiment_id if found is not None else client.create_experiment(name)


def find_run(client: Any, experiment_id: str, tags: dict[str, str]) -> str | None:
    """The newest run of the experiment carrying all `tags` (values are slugs: no quoting needed)."""
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    runs = client.search_runs([experiment_id], filter_string=query, max_results=1, order_by=["attributes.start_time DESC"])
    return runs[0].info.run_id if runs else None


def sweep_run(client: Any, experiment_id: str, sweep: str) -> str:
    """The sweep's own run (named after it): trial runs are its children, the report its artifacts."""
    tags = {SWEEP_TAG: sweep, ROLE_TAG: "sweep"}
    found = find_run(client, experiment_id, tags)
    return found or client.create_run(experiment_id, run_name=sweep, tags=tags).info.run_id


def wandb_dir(tracking: TrackingSpec, sweep_dir: str | None) -> str | None:
    """Where W&B writes run folders: the spec's `dir`, else WANDB_DIR, else a local sweep directory.

    Resolved in the driver and passed to `wandb.init`: Tune's W&B logger runs in Ray actors, whose
    environment is the one Ray started with, not the driver's now."""
    chosen = (tracking.wandb.dir if tracking.wandb else None) or os.environ.get("WANDB_DIR")
    if chosen is None and sweep_dir and "://" not in sweep_dir:
        chosen = sweep_dir
    if chosen is not None:
        Path(chosen).mkdir(parents=True, exist_ok=True)
    return chosen


def wandb_settings(tracking: TrackingSpec, sweep: str, sweep_dir: str | None) -> dict[str, Any]:
    """`wandb.init` keywords the spec decides (project, entity, mode, dir), without the unset ones."""
    w = tracking.wandb
    assert w is not None
    chosen = {"project": tracking.project(sweep), "entity": w.entity, "mode": w.mode, "dir": wandb_dir(tracking, sweep_dir)}
    return {k: v for k, v in chosen.items() if v is not None}


def log_report(tracking: TrackingSpec, sweep: str, sweep_dir: str, files: list[Path]) -> list[str]:
    """The report's files (report.html and its PNGs, or report.md) as artifacts: of the sweep's MLflow
    run, and of a W&B `report` run grouped with the sweep's trials, whose media panel also shows the
    HTML and the plots. Returns one line per tracker saying where they went."""
    said = []
    if tracking.mlflow is not None:
        client, experiment_id = mlflow_experiment(tracking, sweep)
        run_id = sweep_run(client, experiment_id, sweep)
        for path in files:
            client.log_artifact(run_id, str(path), artifact_path="report")
        said.append(f"MLflow: {len(files)} report files on run {sweep!r} ({run_id}) of experiment "
                    f"{tracking.experiment(sweep)!r}")
    if tracking.wandb is not None:
        import wandb

        media = {p.stem: wandb.Html(p.read_text()) if p.suffix == ".html" else wandb.Image(str(p))
                 for p in files if p.suffix in (".html", ".png")}
        run = _wandb_run(dict(**wandb_settings(tracking, sweep, sweep_dir), group=sweep, name=f"{sweep}-report",
                              job_type="report", config={"sweep": sweep}),
                         media, wandb.Artifact(f"{sweep}-report", type="report"), files)
        said.append(f"W&B: report run {run.name!r} ({run.id}) in project {tracking.project(sweep)!r}")
    return said


def log_audit(tracking: TrackingSpec, experiment: str, files: list[Path], summary: dict[str, Any]) -> list[str]:
    """An audit's summaries (audit.json, audit.md) as artifacts of one new run per tracker, with the
    verdict and each overall change as metrics (`change/<metric>`), so audits compare in the UI."""
    name = f"audit {Path(str(summary['adapter'])).name or summary['adapter']}"
    metrics = {"passed": float(summary["passed"]),
               **{f"change/{r['metric']}": float(r["change"]) for r in summary["overall"]
                  if isinstance(r.get("change"), (int, float)) and math.isfinite(r["change"])}}
    params = {"base": summary["base"], "adapter": summary["adapter"]}
    said = []
    if tracking.mlflow is not None:
        client, experiment_id = mlflow_experiment(tracking, experiment)
        run_id = client.create_run(experiment_id, run_name=name, tags={ROLE_TAG: "audit"}).info.run_id
        for key, value in params.items():
            client.log_param(run_id, key, value)
        for key, value in metrics.items():
            client.log_metric(run_id, key, value)
        for path in files:
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id)
        said.append(f"MLflow: audit run {run_id} in experiment {tracking.experiment(experiment)!r}")
    if tracking.wandb is not None:
        import wandb

        run = _wandb_run(dict(**wandb_settings(tracking, experiment, None), name=name, job_type="audit", config=params),
                         metrics, wandb.Artifact("audit", type="audit", metadata={"passed": summary["passed"]}), files)
        said.append(f"W&B: audit run {run.id} in project {tracking.project(experiment)!r}")
    return said


def _wandb_run(init: dict[str, Any], logged: dict[str, Any], artifact: Any, files: list[Path]) -> Any:
    """One finished W&B run: `logged` as its one step (media or metrics) and `files` as `artifact`."""
    import wandb

    run = wandb.init(**init)
    try:
        if logged:
            run.log(logged)
        for path in files:
            artifact.add_file(str(path))
        run.log_artifact(artifact)
    finally:
        run.finish()
    return run


def describe_runs(tracking: TrackingSpec, sweep: str, sweep_dir: str, trials: int) -> list[str]:
    """What the driver prints after a sweep: where its tracker runs are (trial runs log silently)."""
    said = []
    if tracking.mlflow is not None:
        said.append(f"MLflow: {trials} trial runs under run {sweep!r} in experiment {tracking.experiment(sweep)!r} "
                    f"at {mlflow_uri(tracking) or 'the default store'}")
    if tracking.wandb is not None:
        mode = wandb_mode(tracking)
        where = wandb_dir(tracking, sweep_dir)
        line = f"W&B: {trials} trial runs in group {sweep!r} of project {tracking.project(sweep)!r} ({mode})"
        if mode == "offline" and where:
            line += f"; upload with `wandb sync {where}/wandb/offline-run-*`"
        said.append(line)
    return said
