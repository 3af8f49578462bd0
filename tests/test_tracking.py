"""Experiment tracking (the spec's `tracking:`): MLflow on a local file store, W&B in offline mode.

Real clients, real stores: MLflow writes its folder store under tmp_path (MLflow 3 asks for
MLFLOW_ALLOW_FILE_STORE=true for one), W&B writes offline run folders; nothing reaches a network.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from alignsweep.engine.tracking import trial_params, tracked_metrics
from alignsweep.engine.tracking_runs import ROLE_TAG, TRIAL_TAG
from alignsweep.spec.config import validate_spec
from alignsweep.spec.plan import expand_trials

HEADLINE = ("safe_rate", "over_refusal_rate", "accuracy", "bias_ambig")


@pytest.fixture()
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A local MLflow folder store and a W&B directory, both under tmp_path."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    for var in ("MLFLOW_TRACKING_URI", "WANDB_DIR", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    return {"mlflow": tmp_path / "mlruns", "wandb": tmp_path / "wandb"}


def tracking_section(stores: dict[str, Path]) -> dict[str, Any]:
    return {"mlflow": {"tracking_uri": str(stores["mlflow"]), "experiment": "alignment"},
            "wandb": {"project": "alignment", "mode": "offline", "dir": str(stores["wandb"])}}


def spec_doc(name: str, tracking: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "name": name, "seed": 0, "models": ["tiny:llama"], "methods": {"lora": {"r": [4]}, "ia3": {}},
        "training": {"max_steps": 4, "eval_interval": 2, "batch_size": 4, "max_examples": 32, "max_seq_length": 64,
                     "learning_rates": [1e-2], "heldout_examples": 8},
        "scheduler": {"name": "none"},
        "evaluation": {"safety": {"limit": 1, "max_new_tokens": 8}, "fairness": {"limit": 2},
                       "over_refusal": {"limit": 1}},
        "tracking": tracking,
    }


def write_spec(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def mlflow_runs(uri: Path, experiment: str) -> tuple[Any, list[Any]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=str(uri))
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    return client, client.search_runs([found.experiment_id])


def offline_runs(wandb_dir: Path) -> list[Path]:
    return sorted((wandb_dir / "wandb").glob("offline-run-*"))


def one_line_error(run: Any, pattern: str) -> None:
    assert run.code == 2, (run.code, run.out, run.err)
    assert len(run.err_lines) == 1 and pattern in run.err, run.err


# ---------------------------------------------------------------- the spec section


def test_tracking_section_is_validated_like_the_rest_of_the_spec(cli, stores: dict[str, Path], tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.yaml", spec_doc("trk", tracking_section(stores)))
    run = cli("run", spec, "--dry-run")
    assert run.code == 0, run.err
    assert (f"tracking: one run per trial in MLflow experiment 'alignment' at {stores['mlflow']} and "
            "W&B project 'alignment' (offline)") in " ".join(run.out.split())
    assert "tracking: off" in cli("run", spec, "--dry-run", "tracking=").out
    # bare `mlflow:` is MLflow with its defaults: the experiment is the sweep's name
    assert validate_spec(spec_doc("trk", {"mlflow": None})).tracking.experiment("trk") == "trk"
    for override, message in (
        ("tracking.mlflow.uri=x", "tracking.mlflow.uri: unknown field (fields here: tracking_uri, experiment)"),
        ("tracking.mlfow={}", "tracking.mlfow: unknown field (did you mean 'mlflow'?)"),
        ("tracking.wandb.mode=cloud", "tracking.wandb.mode: Input should be 'online', 'offline' or 'disabled'"),
        ("tracking={}", "tracking: name a tracker: mlflow and/or wandb"),
        ("tracking.neptune={}", "tracking.neptune: unknown field (fields here: mlflow, wandb)"),
    ):
        one_line_error(cli("run", spec, "--dry-run", override), message)
    doc = spec_doc("trk", {"mlflow": {"experiment": ""}})
    one_line_error(cli("run", write_spec(tmp_path / "bad.yaml", doc)), f"{tmp_path / 'bad.yaml'}:")


@pytest.mark.parametrize("tracker", ["mlflow", "wandb"])
def test_a_tracker_that_is_not_installed_fails_in_one_line_before_ray_starts(
        tracker: str, cli, stores: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    monkeypatch.setitem(sys.modules, tracker, None)  # Python's own "not importable" marker
    spec = write_spec(tmp_path / "s.yaml", spec_doc("missing", tracking_section(stores)))
    dry = " ".join(cli("run", spec, "--dry-run").out.split())
    assert f"[{tracker} not installed: pip install 'alignsweep[{tracker}]']" in dry
    run = cli("run", spec, "--results", tmp_path / "results")
    one_line_error(run, f"tracking.{tracker}: {tracker} is not installed: pip install 'alignsweep[{tracker}]'")
    assert not ray.is_initialized() and not (tmp_path / "results").exists()


def test_stores_that_cannot_be_used_are_refused_before_ray_starts(cli, stores: dict[str, Path], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # MLflow 3 refuses a folder store without it
    spec = write_spec(tmp_path / "s.yaml", spec_doc("stores", {"mlflow": {"tracking_uri": str(stores["mlflow"])}}))
    one_line_error(cli("run", spec, "--results", tmp_path / "results"),
                   f"tracking.mlflow.tracking_uri: MLflow cannot open '{stores['mlflow']}'")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no `wandb login` credentials in a fresh home
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    spec = write_spec(tmp_path / "s.yaml", spec_doc("stores", {"wandb": {"mode": "online"}}))
    one_line_error(cli("run", spec, "--results", tmp_path / "results"),
                   "tracking.wandb: cannot log in to W&B (no API key: set WANDB_API_KEY or run `wandb login`); "
                   "or set tracking.wandb.mode: offline")
    assert not (tmp_path / "results").exists()


# ---------------------------------------------------------------- what a trial logs


def test_params_are_the_flat_hyperparameters_and_metrics_the_overall_headline() -> None:
    plans = {p.method: p.to_config() for p in expand_trials(validate_spec(spec_doc("p", None)))}
    lora = trial_params(plans["lora"])
    assert {k: lora[k] for k in ("model", "method", "learning_rate", "seed", "max_steps", "batch_size", "r")} == {
        "model": "tiny:llama", "method": "lora", "learning_rate": 0.01, "seed": 0, "max_steps": 4, "batch_size": 4,
        "r": 4}
    assert "r" not in trial_params(plans["ia3"]) and trial_params(plans["ia3"])["method"] == "ia3"
    assert not any(isinstance(v, dict) or v is None for v in lora.values())
    result = {"loss": 2.5, "safe_rate": 0.9, "safe_rate/S1": 1.0, "screen_safe_rate": 0.8, "accuracy": 0.5,
              "bias_ambig": math.nan, "over_refusal_rate": 0, "full_evaluation": True, "step": 2,
              "node_id": "abc", "train_wall_s": 3.0, "config": {"plan": plans["lora"]}}
    assert tracked_metrics(result) == {"loss": 2.5, "safe_rate": 0.9, "screen_safe_rate": 0.8, "accuracy": 0.5,
                                       "over_refusal_rate": 0.0}


def test_a_resumed_driver_continues_each_trial_run_in_mlflow(stores: dict[str, Path]) -> None:
    """A resumed sweep is a new driver with new Trial objects: the trial's run is found again by its tag."""
    from ray.tune.experiment import Trial

    from alignsweep.engine.tracking import MLflowTrials

    spec = validate_spec(spec_doc("resumed", tracking_section(stores)))
    plan = expand_trials(spec)[0].to_config()
    run_ids = []
    for step in (2, 4):  # the first driver reports step 2 and dies; the resumed one reports step 4
        callback = MLflowTrials(spec.tracking, spec.name, "name: resumed")
        callback.setup()
        trial = Trial("peft_trial", config={"plan": plan}, stub=True)
        callback.log_trial_start(trial)
        callback.log_trial_result(1, trial, {"loss": 1.0 / step, "safe_rate": 0.5, "step": step})
        run_ids.append(callback._trial_runs[trial])
    callback.log_trial_end(trial)
    client, runs = mlflow_runs(stores["mlflow"], "alignment")
    assert len(set(run_ids)) == 1 and len(runs) == 2  # the trial's run and the sweep's, each once
    assert [(m.step, m.value) for m in client.get_metric_history(run_ids[0], "loss")] == [(2, 0.5), (4, 0.25)]
    assert client.get_run(run_ids[0]).info.status == "FINISHED"


def test_audit_logs_its_summary_to_mlflow_and_wandb(cli, audit_data: dict, untrained_lora: str, stores: dict[str, Path],
                                                     tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "tracking.yaml", {"tracking": tracking_section(stores)})
    data = ["--safety-data", audit_data["safety"], "--fairness-data", audit_data["fairness"],
            "--over-refusal-data", audit_data["over_refusal"], "--limit", "1"]
    one_line_error(cli("audit", "--base", "tiny:llama", *data, "--results", tmp_path / "r0", "--tracking", spec),
                   "--tracking needs --adapter")
    one_line_error(cli("audit", "--base", "tiny:llama", "--adapter", untrained_lora, *data, "--results",
                       tmp_path / "r0", "--tracking", tmp_path / "s.yaml"), f"--tracking {tmp_path / 's.yaml'}: cannot read")
    write_spec(tmp_path / "typo.yaml", {"tracking": {"mlflow": {"experiment": "x", "uri": "y"}}})
    one_line_error(cli("audit", "--base", "tiny:llama", "--adapter", untrained_lora, *data, "--results",
                       tmp_path / "r0", "--tracking", tmp_path / "typo.yaml"), "tracking.mlflow.uri: Extra inputs")
    assert not (tmp_path / "r0").exists()

    run = cli("audit", "--base", "tiny:llama", "--adapter", untrained_lora, *data, "--results", tmp_path / "r",
              "--fail-on", "safe_rate.overall<0", "--tracking", spec)
    assert run.code == 0, run.err
    assert "MLflow: audit run" in run.out and "W&B: audit run" in run.out
    client, runs = mlflow_runs(stores["mlflow"], "alignment")
    [audit] = runs
    assert audit.data.tags[ROLE_TAG] == "audit" and audit.data.params["adapter"] == untrained_lora
    assert audit.data.metrics["passed"] == 1.0 and audit.data.metrics["change/safe_rate"] == 0.0  # B = 0: no change
    assert sorted(a.path for a in client.list_artifacts(audit.info.run_id)) == ["audit.json", "audit.md"]
    logged = Path(client.download_artifacts(audit.info.run_id, "audit.json", str(tmp_path / "dl")))
    assert json.loads(logged.read_text()) == json.loads((tmp_path / "r" / "audit.json").read_text())
    [wandb_run] = offline_runs(stores["wandb"])
    assert list(wandb_run.glob("run-*.wandb"))


# ---------------------------------------------------------------- a real sweep


@pytest.mark.slow
def test_sweep_tracks_one_run_per_trial_in_mlflow_and_wandb(ray_local: None, cli, stores: dict[str, Path],
                                                            tmp_path: Path) -> None:
    from alignsweep.analysis.views import open as open_views
    from alignsweep.engine.sweep import run_sweep

    outcome = run_sweep(validate_spec(spec_doc("tracked", tracking_section(stores))), results=str(tmp_path / "results"))
    assert outcome.errors == 0
    con = open_views(outcome.sweep_dir)
    trials = dict(con.sql("SELECT trial_id, method FROM trials WHERE method <> 'base'").fetchall())
    stored = {(t, s, m): v for t, s, m, v in con.sql(
        "SELECT trial_id, step, metric, value FROM metrics WHERE category = 'overall' "
        "AND benchmark NOT LIKE 'screen_%' AND method <> 'base'").fetchall()}

    client, runs = mlflow_runs(stores["mlflow"], "alignment")
    [parent] = [r for r in runs if r.data.tags[ROLE_TAG] == "sweep"]
    children = {r.data.tags[TRIAL_TAG]: r for r in runs if r.data.tags[ROLE_TAG] == "trial"}
    assert len(runs) == 3 and set(children) == set(trials)  # one run per trial, plus the sweep's own
    assert parent.info.run_name == "tracked" and parent.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["sweep.yaml"]
    for trial_id, run in children.items():
        assert run.info.run_name == trial_id and run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        params = run.data.params
        assert (params["model"], params["method"], params["learning_rate"], params["seed"], params["max_steps"]) == (
            "tiny:llama", trials[trial_id], "0.01", "0", "4")
        assert ("r" in params) == (trials[trial_id] == "lora")
        assert not any("/" in k for k in params) and not any("/" in k for k in run.data.metrics)  # flat, overall only
        for metric in ("loss", *HEADLINE):
            history = client.get_metric_history(run.info.run_id, metric)
            # NaN values (a bias with no non-unknown answer on these few items) are not logged: every finite one is
            steps = [2, 4] if metric == "loss" else [s for s in (2, 4) if math.isfinite(stored[(trial_id, s, metric)])]
            assert [m.step for m in history] == steps, (trial_id, metric)
            if metric != "loss":  # each evaluation's value is the store's
                assert [m.value for m in history] == pytest.approx([stored[(trial_id, s, metric)] for s in steps])

    folders = offline_runs(stores["wandb"])
    assert len(folders) == len(trials)  # one offline run per trial, complete when the sweep returned
    logs = [b"".join(f.read_bytes() for f in folder.glob("run-*.wandb")) for folder in folders]
    assert sorted(next(t for t in trials if t.encode() in log) for log in logs) == sorted(trials)
    assert all(m.encode() in log for log in logs for m in ("learning_rate", *HEADLINE))
    assert not any(b"results_dir" in log for log in logs)  # Tune's nested config stays out

    assert cli("report", outcome.sweep_dir, "--no-tracking").code == 0
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["sweep.yaml"]
    assert len(offline_runs(stores["wandb"])) == len(trials)
    run = cli("report", outcome.sweep_dir)
    assert run.code == 0, run.err
    logged = [a.path for a in client.list_artifacts(parent.info.run_id, "report")]
    written = sorted(p.name for p in (Path(outcome.sweep_dir) / "report").iterdir())
    assert sorted(Path(p).name for p in logged) == written and "report.html" in written
    assert len(offline_runs(stores["wandb"])) == len(trials) + 1  # the report's own run
    assert f"MLflow: {len(written)} report files on run 'tracked'" in run.out
    md = cli("report", outcome.sweep_dir, "--format", "md")  # the Markdown summary: stdout stays pure Markdown
    assert md.code == 0 and "MLflow: 1 report files" in md.err and "MLflow:" not in md.out
    assert "report/report.md" in [a.path for a in client.list_artifacts(parent.info.run_id, "report")]
