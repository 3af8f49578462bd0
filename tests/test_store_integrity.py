"""Store files damaged from outside (fast tier: a factory-built store, no Ray): found, named, set aside
by key; and the disk-full test that decides the one-line `results disk full` error."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from alignsweep.errors import ResultsDiskFull, is_disk_full
from alignsweep.store import file_name
from alignsweep.store.integrity import key_of, set_aside, unreadable_files
from store_factory import build_sweep


@pytest.mark.parametrize("trial_id", ["llama-lora-1", "a/b c%d", "x__step-00000003"])
def test_a_file_name_gives_back_its_key(trial_id: str) -> None:
    for table, step in (("metrics", 12), ("safety_items", 0), ("trials", None)):
        name = file_name(table, trial_id, step or 0).rpartition("/")[2]
        assert key_of(table, name) == (trial_id, step)
    assert key_of("metrics", "copy.parquet") == ("copy", None)  # not the writer's name: no step to restore


def test_truncated_files_are_found_named_and_set_aside(tmp_path: Path, cli) -> None:
    sweep = tmp_path / "demo"
    build_sweep(str(sweep), families={"tiny:llama": "llama"}, methods=("lora",), configs=1, items=True)
    assert unreadable_files(str(sweep)) == []
    victim = sorted((sweep / "store" / "metrics").glob("*__step-*.parquet"))[-1]
    victim.write_bytes(victim.read_bytes()[:40])
    (bad,) = unreadable_files(str(sweep))
    assert (bad.path, bad.table) == (str(victim), "metrics") and bad.step == key_of("metrics", victim.name)[1]

    result = cli("query", sweep, "SELECT count(*) FROM trials")
    assert result.code == 2 and len(result.err_lines) == 1
    assert result.err_lines[0].startswith(f"alignsweep: error: {victim}: not a readable Parquet file (")

    (moved,) = set_aside(str(sweep), [bad])
    assert moved == str(sweep / "corrupt" / "metrics" / victim.name) and not victim.exists()
    assert unreadable_files(str(sweep)) == [] and cli("query", sweep, "SELECT count(*) FROM metrics").code == 0


def test_disk_full_is_recognised_through_causes_and_ray_error_text() -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError as exc:
            raise RuntimeError("Tune run failed") from exc
    except RuntimeError as wrapped:
        assert is_disk_full(wrapped)
    assert is_disk_full("ray.exceptions.RayTaskError: OSError: [Errno 28] No space left on device")
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied")) and not is_disk_full(None)
    assert str(ResultsDiskFull("/r/demo")) == ("results disk full: /r/demo: No space left on device — free space "
                                                "and run `alignsweep resume /r/demo`")


def test_truncated_tune_state_is_put_back_from_its_last_good_copy(tmp_path: Path) -> None:
    import json
    import pickle

    from alignsweep.engine.tune_state import BACKUP_DIR, readable, restore_damaged_state

    sweep, tune = tmp_path / "demo", tmp_path / "demo" / "tune"
    tune.mkdir(parents=True)
    state = json.dumps({"trial_data": [["x" * 5000, "{}"]]}).encode()
    variants = pickle.dumps({"_total_samples": 3})
    assert readable(state) and readable(variants) and not readable(state[:4096]) and not readable(variants[:9])
    (tune / "experiment_state-1.json").write_bytes(state[:4096])  # what a copy onto a full disk leaves
    (tune / "basic-variant-state-1.json").write_bytes(variants)  # whole, but newer than the copy
    (tune / "callback-states-1.pkl").write_bytes(variants[:9])  # damaged, and no copy of it was kept
    (sweep / BACKUP_DIR).mkdir()
    (sweep / BACKUP_DIR / "experiment_state-1.json").write_bytes(state)
    (sweep / BACKUP_DIR / "basic-variant-state-1.json").write_bytes(pickle.dumps({"_total_samples": 0}))

    assert restore_damaged_state(str(sweep), str(tune)) == ["basic-variant-state-1.json", "experiment_state-1.json"]
    assert (tune / "experiment_state-1.json").read_bytes() == state  # the whole copy, taken together, is back
    assert (tune / "basic-variant-state-1.json").read_bytes() == pickle.dumps({"_total_samples": 0})
    assert not (tune / "callback-states-1.pkl").exists()  # damaged, no copy: moved aside, so Tune cannot read it
    assert (sweep / BACKUP_DIR / "callback-states-1.pkl.damaged").read_bytes() == variants[:9]
    assert restore_damaged_state(str(sweep), str(tune)) == []  # whole now: nothing to do
