"""A last good copy of Tune's experiment state, so a results disk that filled up cannot break `resume`.

Why: Tune writes its experiment state (`experiment_state-*.json`, the search algorithm's
`basic-variant-state-*.json`, `callback-states-*.pkl`) atomically into a staging folder on the
driver, then copies it into `<sweep>/tune/` with `pyarrow.fs.copy_files`, which truncates the target
first. On a full disk every such copy leaves the state truncated (measured: a 110 KB state cut to
a page boundary), and `Tuner.restore` then fails or restores a grid that lost its trials' configs.
`TuneStateBackup` copies the staging files into `<sweep>/tune-state/` through the store's atomic
writer as trials end, so a failed copy keeps the previous one; `restore_damaged_state` puts the
copy back over any state file in `tune/` that no longer parses, before `resume` restores.
"""

from __future__ import annotations

import json
import logging
import os
import pickle

from ray.tune import Callback

from alignsweep.store import fs as store_fs

logger = logging.getLogger(__name__)

BACKUP_DIR = "tune-state"
STATE_PREFIXES = ("experiment_state-", "basic-variant-state-", "search_gen_state-", "callback-states-")


def _state_files(folder: str) -> list[str]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(STATE_PREFIXES))


def readable(data: bytes) -> bool:
    """Whether a state file's bytes load whole (JSON, or Tune's cloudpickle under a `.json` name)."""
    try:
        json.loads(data)
        return True
    except ValueError:
        pass
    try:
        pickle.loads(data)  # noqa: S301 — our own sweep's Tune state, which Tune itself unpickles on restore
        return True
    except Exception:  # noqa: BLE001 — any failure to load is "damaged"
        return False


class TuneStateBackup(Callback):
    """Copies Tune's staged experiment state next to `tune/` as each trial starts or ends (atomic writes)."""

    def __init__(self, sweep_dir: str) -> None:
        self.sweep_dir = sweep_dir

    def _backup(self, trial) -> None:
        staging = getattr(getattr(trial, "storage", None), "experiment_driver_staging_path", None)
        if not staging or not store_fs.is_local(store_fs.resolve(self.sweep_dir)[0]):
            return
        fs, root = store_fs.resolve(self.sweep_dir)
        for name in _state_files(staging):
            try:
                with open(os.path.join(staging, name), "rb") as source:
                    data = source.read()
                if readable(data):
                    store_fs.write_atomic(fs, store_fs.join(root, BACKUP_DIR, name), lambda out: out.write(data))
            except OSError as exc:  # a full disk: the previous copy stays, which is the point
                logger.debug("tune state backup skipped: %s", exc)

    def on_trial_start(self, iteration: int, trials: list, trial, **info) -> None:
        self._backup(trial)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._backup(trial)


def restore_damaged_state(sweep_dir: str, tune_dir: str) -> list[str]:
    """When any state file in `tune_dir` does not load, put back the whole last good copy (its files
    were taken together, so they agree with each other); the names put back."""
    fs, root = store_fs.resolve(sweep_dir)
    if not store_fs.is_local(fs):
        return []
    damaged = []
    for name in _state_files(tune_dir):
        with open(os.path.join(tune_dir, name), "rb") as source:
            if not readable(source.read()):
                damaged.append(name)
    backup = os.path.join(root, BACKUP_DIR)
    saved = _state_files(backup)
    if not damaged:
        return []
    if not saved:
        logger.warning("Tune state %s is damaged and has no backup", ", ".join(damaged))
        return []
    for name in saved:
        with open(os.path.join(backup, name), "rb") as source:
            data = source.read()
        store_fs.write_atomic(fs, os.path.join(tune_dir, name), lambda out: out.write(data))
    for name in set(damaged) - set(saved):  # newer than the copy and unreadable: Tune must not pick it
        os.replace(os.path.join(tune_dir, name), os.path.join(backup, f"{name}.damaged"))
    return saved
