"""The sweep spec's `tracking:` section: MLflow and/or W&B runs next to the results store.

Why: teams follow sweeps in their experiment tracker, not in our Parquet store. The section names
where (an MLflow tracking URI and experiment, a W&B project, entity and mode); `engine.tracking`
attaches Tune's own logger callbacks for it. Both clients are optional extras
(`alignsweep[mlflow]`, `alignsweep[wandb]`), so a spec that names one on a machine without it must
fail here — one line, exit 2, before Ray starts — and not as a trial error minutes later.

The section is plain settings; what is logged (each trial's flat hyperparameters, its loss and the
catalog's headline metrics per evaluation, the report and audit summaries) is `engine.tracking`'s.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, model_validator

from alignsweep.errors import InputError
from alignsweep.options import Strict

#: A tracker's name in the spec → (the module it needs, the extra that installs it).
CLIENTS = {"mlflow": ("mlflow", "alignsweep[mlflow]"), "wandb": ("wandb", "alignsweep[wandb]")}
#: MLflow stores behind a server: not probed before a sweep (a down server costs MLflow's retries, minutes).
_REMOTE_SCHEMES = ("http", "https", "databricks", "databricks-uc", "uc")


class MLflowTracking(Strict):
    tracking_uri: str | None = Field(default=None, min_length=1,
                                     description="e.g. http://mlflow:5000, sqlite:///mlflow.db, file:./mlruns "
                                                 "(default: MLFLOW_TRACKING_URI, else MLflow's own)")
    experiment: str | None = Field(default=None, min_length=1, description="default: the sweep's name")


class WandbTracking(Strict):
    project: str | None = Field(default=None, min_length=1, description="default: the sweep's name")
    entity: str | None = Field(default=None, min_length=1, description="team or user (default: W&B's own)")
    mode: Literal["online", "offline", "disabled"] | None = Field(
        default=None, description="default: WANDB_MODE, else online; offline writes runs to `dir` for `wandb sync`")
    dir: str | None = Field(default=None, min_length=1,
                            description="where W&B writes its run folders (default: WANDB_DIR, else the sweep directory)")


class TrackingSpec(Strict):
    """Where trials are tracked; either tracker or both."""

    mlflow: MLflowTracking | None = None
    wandb: WandbTracking | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_keys(cls, data: Any) -> Any:
        """`mlflow:` with nothing under it means MLflow with its defaults, not "no MLflow"."""
        if isinstance(data, dict):
            return {k: ({} if k in CLIENTS and v is None else v) for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _some_tracker(self) -> "TrackingSpec":
        if self.mlflow is None and self.wandb is None:
            raise ValueError("name a tracker: mlflow and/or wandb (or remove the tracking section)")
        return self

    def trackers(self) -> list[str]:
        return [name for name in CLIENTS if getattr(self, name) is not None]

    def experiment(self, sweep: str) -> str:
        return (self.mlflow.experiment if self.mlflow else None) or sweep

    def project(self, sweep: str) -> str:
        return (self.wandb.project if self.wandb else None) or sweep


def mlflow_uri(tracking: TrackingSpec) -> str | None:
    """The tracking URI the spec names, else MLFLOW_TRACKING_URI; None leaves it to MLflow's default."""
    return (tracking.mlflow.tracking_uri if tracking.mlflow else None) or os.environ.get("MLFLOW_TRACKING_URI") or None


def missing_clients(tracking: TrackingSpec) -> list[str]:
    """The spec's trackers whose client is not importable here (found without importing it)."""
    return [name for name in tracking.trackers() if not _installed(CLIENTS[name][0])]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # `sys.modules[module] = None`: Python's own way of marking a module unimportable
        return False


def check_tracking(tracking: TrackingSpec | None, where: str = "tracking") -> None:
    """Each named tracker's client is installed, and a local MLflow store opens; else one `InputError` line.

    `where` prefixes the message: the spec section, or the CLI option that named the file."""
    if tracking is None:
        return
    for name in missing_clients(tracking):
        extra = CLIENTS[name][1]
        raise InputError(f"{where}.{name}: {name} is not installed: pip install '{extra}'")
    if tracking.mlflow is not None:
        _probe_mlflow(mlflow_uri(tracking), f"{where}.mlflow.tracking_uri")
    if tracking.wandb is not None and wandb_mode(tracking) == "online":
        _check_wandb_login(f"{where}.wandb")


def wandb_mode(tracking: TrackingSpec) -> str:
    return (tracking.wandb.mode if tracking.wandb else None) or os.environ.get("WANDB_MODE") or "online"


def _check_wandb_login(where: str) -> None:
    """Online W&B needs credentials (WANDB_API_KEY or `wandb login`); Tune would only find out in `fit()`."""
    import wandb

    try:
        ok = wandb.login(prompt=False)
    except Exception as exc:  # a malformed key: wandb's own reason
        ok, reason = False, (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    else:
        reason = "no API key: set WANDB_API_KEY or run `wandb login`"
    if not ok:
        raise InputError(f"{where}: cannot log in to W&B ({reason}); or set tracking.wandb.mode: offline")


def _probe_mlflow(uri: str | None, where: str) -> None:
    """Open a local store (a folder, a file: or sqlite: URI, MLflow's default) the way the callback will.

    Why: MLflow 3 refuses a bare folder store unless MLFLOW_ALLOW_FILE_STORE=true, and `mlflow-skinny`
    has no SQL backend; either would otherwise fail inside `Tuner.fit`, after the directory was claimed.
    """
    if uri and urlparse(uri).scheme in _REMOTE_SCHEMES:
        return
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # MlflowException, a missing SQL driver, an unwritable folder: one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{where}: MLflow cannot open {uri or 'its default store'!r} ({first})") from None


def describe_tracking(tracking: TrackingSpec | None, sweep: str) -> str:
    """One line for `run --dry-run`: where trials would be tracked, and what is not installed here."""
    if tracking is None:
        return "tracking: off (add a `tracking:` section for MLflow or W&B)"
    parts = []
    if tracking.mlflow is not None:
        parts.append(f"MLflow experiment {tracking.experiment(sweep)!r} at {mlflow_uri(tracking) or 'the default store'}")
    if tracking.wandb is not None:
        w = tracking.wandb
        parts.append(f"W&B project {tracking.project(sweep)!r}" + (f" of {w.entity!r}" if w.entity else "")
                     + f" ({wandb_mode(tracking)})")
    missing = missing_clients(tracking)
    note = "".join(f"  [{n} not installed: pip install '{CLIENTS[n][1]}']" for n in missing)
    return f"tracking: one run per trial in {' and '.join(parts)}{note}"
