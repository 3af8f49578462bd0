"""The results store: schemas round-trip, the writer refuses bad records, writes are atomic and idempotent,
and the files are readable without alignsweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from alignsweep.errors import InputError

from alignsweep.store import (
    SCHEMA_VERSIONS,
    SCHEMAS,
    SchemaError,
    mark_finished,
    read_manifest,
    update_manifest,
    write_manifest,
    write_records,
)
from store_checks import WRITER_TEMP, assert_store_clean, stray_temps
from store_factory import build_sweep

WAIT_S = 120  # bound on every wait for a subprocess to get somewhere

METRIC = {"base_model": "tiny:llama", "method": "lora", "benchmark": "safety", "category": "S1", "metric": "safe_rate", "value": 0.9, "n": 20}
ROWS = {
    "trials": [{"base_model": "tiny:llama", "family": "llama", "method": "lora", "status": "TERMINATED", "stopped_early": True,
                "steps": 20, "train_loss": 1.25, "wall_s": 3.5, "checkpoint": "/x/ckpt", "learning_rate": 1e-3, "r": 8,
                "alpha": 16.0, "target_modules": ["q_proj", "v_proj"], "seed": 3}],
    "metrics": [METRIC, {**METRIC, "category": "overall"}],
    "safety_items": [{"benchmark": "safety", "prompt_id": "S1-0", "category": "S1", "prompt": "p", "response": "no", "verdict": "safe",
                      "hazard_codes": ["S1", "S9"], "judge": "ensemble[any_unsafe](refusal+g)",
                      "judge_verdicts": [{"judge": "refusal", "verdict": "safe"}, {"judge": "g", "verdict": "unsafe"}],
                      "coherence": 0.82, "coherent": True}],
    "fairness_items": [{"example_id": "Age-0", "category": "Age", "context_condition": "ambig", "question_polarity": "neg",
                        "label": 2, "target_index": 0, "prediction": 1, "loglikelihoods": [-3.5, -2.25, -7.0], "truncated": True}],
    "task_items": [{"task": "demo_mc", "doc_id": 0, "category": "nature", "target": 1, "prediction": 1, "prediction_norm": 0,
                    "loglikelihoods": [-2.5, -1.25], "truncated": False}],
    "judge_checks": [{"judge": "refusal", "labels": "bundled", "category": "overall", "metric": "kappa", "value": 0.5,
                      "n": 77}],
}


@pytest.mark.parametrize("table", list(SCHEMAS))
def test_schema_round_trip(tmp_path: Path, table: str) -> None:
    path = write_records(str(tmp_path / "demo"), table, ROWS[table], trial_id="t1", step=7)
    read = pq.read_table(path)
    assert read.schema.equals(SCHEMAS[table], check_metadata=False)
    assert read.schema.metadata[b"alignsweep.schema_version"] == str(SCHEMA_VERSIONS[table]).encode()
    for written, back in zip(ROWS[table], read.to_pylist()):
        assert {k: back[k] for k in written} == written
        assert back["trial_id"] == "t1"
        if table == "trials":
            assert back["sweep"] == "demo" and back["epochs"] is None
        else:
            assert back["step"] == 7


def test_trials_take_nested_and_extra_hyperparameters(tmp_path: Path) -> None:
    record = {"base_model": "m", "method": "lora", "hyperparameters": {"learning_rate": 0.01, "r": 4, "lora_variant": "dora"}}
    table = pq.read_table(write_records(str(tmp_path), "trials", [record], trial_id="t"))
    assert table.schema.field("r").type == pa.int64()
    assert table.schema.field("lora_variant").type == pa.string()
    assert table.to_pylist()[0]["lora_variant"] == "dora" and table.to_pylist()[0]["learning_rate"] == 0.01


@pytest.mark.parametrize(
    ("table", "records", "kwargs", "message"),
    [
        ("metricz", [METRIC], {"step": 1}, r"unknown table 'metricz' \(known: trials, metrics"),
        ("metrics", [{k: v for k, v in METRIC.items() if k != "metric"}], {"step": 1}, "row 0: missing required column 'metric'"),
        ("metrics", [{**METRIC, "value": "high"}], {"step": 1}, "column 'value' expects double"),
        ("metrics", [{**METRIC, "n": 2.5}], {"step": 1}, "column 'n' expects int64"),
        ("metrics", [{**METRIC, "n": True}], {"step": 1}, "column 'n' expects int64"),
        ("metrics", [{**METRIC, "valeu": 1.0}], {"step": 1}, "has no column\\(s\\) 'valeu'"),
        ("metrics", [METRIC, METRIC], {"step": 1}, "row key .* appears 2 times"),
        ("metrics", [{**METRIC, "trial_id": "other"}], {"step": 1}, "disagrees with the trial_id='t1'"),
        ("metrics", [METRIC], {"step": -1}, "step must be a non-negative int"),
        ("metrics", [METRIC], {}, "step must be a non-negative int"),
        ("fairness_items", [{**ROWS["fairness_items"][0], "loglikelihoods": ["a"]}], {"step": 1}, "'loglikelihoods' expects list<item: double>"),
    ],
)
def test_writer_refuses_bad_records(tmp_path: Path, table: str, records: list, kwargs: dict, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        write_records(str(tmp_path), table, records, trial_id="t1", **kwargs)
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.parquet"))


def test_arrow_table_input_is_cast_or_refused(tmp_path: Path) -> None:
    good = pa.table({"base_model": ["m"], "method": ["lora"], "benchmark": ["safety"], "category": ["S1"],
                     "metric": ["safe_rate"], "value": pa.array([1], pa.int32()), "n": pa.array([3], pa.int32())})
    read = pq.read_table(write_records(str(tmp_path), "metrics", good, trial_id="t", step=0))
    assert read.schema.field("value").type == pa.float64() and read["value"].to_pylist() == [1.0]
    with pytest.raises(SchemaError, match="column 'value' expects double, got string"):
        write_records(str(tmp_path), "metrics", good.set_column(5, "value", pa.array(["1"])), trial_id="t", step=0)


def test_rerun_overwrites_instead_of_duplicating(tmp_path: Path) -> None:
    sweep = str(tmp_path / "demo")
    first = write_records(sweep, "metrics", [METRIC], trial_id="t1", step=10)
    second = write_records(sweep, "metrics", [{**METRIC, "value": 0.5}], trial_id="t1", step=10)
    write_records(sweep, "trials", ROWS["trials"], trial_id="t1")
    write_records(sweep, "trials", [{**ROWS["trials"][0], "status": "ERROR"}], trial_id="t1")
    assert first == second
    assert sorted(p.name for p in (tmp_path / "demo" / "store").rglob("*.parquet")) == ["t1.parquet", "t1__step-00000010.parquet"]
    con = duckdb.connect()
    rows = con.sql(f"SELECT value FROM read_parquet('{tmp_path}/demo/store/metrics/*.parquet')").fetchall()
    assert rows == [(0.5,)]
    status = con.sql(f"SELECT status FROM read_parquet('{tmp_path}/demo/store/trials/*.parquet')").fetchall()
    assert status == [("ERROR",)]


def test_odd_trial_ids_get_distinct_safe_names(tmp_path: Path) -> None:
    a = write_records(str(tmp_path), "metrics", [METRIC], trial_id="a/b c", step=1)
    b = write_records(str(tmp_path), "metrics", [METRIC], trial_id="a_b_c", step=1)
    assert a != b and Path(a).parent == Path(b).parent and Path(a).exists()


_KILL_BEFORE_RENAME = textwrap.dedent(
    """
    import os, sys, time
    from alignsweep.store import fs, write_records
    def stop(temp):
        open(sys.argv[2], "w").write(temp)
        time.sleep(600)
    fs.before_rename = stop
    write_records(sys.argv[1], "metrics", [dict(base_model="m", method="lora", benchmark="safety",
                  category="S1", metric="safe_rate", value=0.123, n=1)], trial_id="t1", step=5)
    """
)

_HUGE_WRITE = textwrap.dedent(
    """
    import sys
    import numpy as np
    import pyarrow as pa
    from alignsweep.store import write_records
    n = 2_000_000  # about a second of writing after a second of checks: long enough to be caught mid-write
    const = lambda v: pa.array([v]).take(pa.array(np.zeros(n, dtype=np.int64)))
    table = pa.table({"base_model": const("m"), "method": const("lora"), "benchmark": const("safety"),
                      "category": const("S1"), "metric": pa.array(np.arange(n)).cast(pa.string()),
                      "value": np.random.default_rng(0).random(n), "n": np.ones(n, dtype=np.int64)})
    print("ready", flush=True)
    write_records(sys.argv[1], "metrics", table, trial_id="t1", step=5)
    """
)


def _old_file(sweep: str) -> Path:
    return Path(write_records(sweep, "metrics", [METRIC], trial_id="t1", step=5))


def _assert_old_intact(path: Path) -> None:
    assert pq.read_table(path)["value"].to_pylist() == [0.9]
    assert [p.name for p in path.parent.glob("*.parquet")] == [path.name]
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{path.parent}/*.parquet')").fetchall() == [(1,)]
    assert ds.dataset(str(path.parent)).to_table().num_rows == 1


def test_writer_killed_between_temp_write_and_rename_leaves_old_file(tmp_path: Path) -> None:
    sweep, marker = str(tmp_path / "demo"), tmp_path / "temp-written"
    old = _old_file(sweep)
    proc = subprocess.Popen([sys.executable, "-c", _KILL_BEFORE_RENAME, sweep, str(marker)])
    try:
        proc_wait_for(marker, proc)
        assert Path(marker.read_text()).exists()  # the complete new bytes sit in the temp file …
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    _assert_old_intact(old)  # … and the target is still the old file, readable by every reader


def test_writer_killed_mid_write_leaves_old_file_or_none(tmp_path: Path) -> None:
    sweep = str(tmp_path / "demo")
    old = _old_file(sweep)
    proc = subprocess.Popen([sys.executable, "-c", _HUGE_WRITE, sweep], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        temp, deadline = None, time.monotonic() + WAIT_S
        while temp is None and proc.poll() is None:  # kill as soon as the temp file has bytes in it
            assert time.monotonic() < deadline, "the writer never started its temp file"
            temps = [p for p in old.parent.glob(".*.tmp") if _size(p) > 0]
            temp = temps[0] if temps else None
            time.sleep(0.002)
        assert temp is not None, "the writer finished before it could be killed; make the table bigger"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    _assert_old_intact(old)


def proc_wait_for(marker: Path, proc: subprocess.Popen, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert proc.poll() is None, "writer exited before reaching the rename"
        assert time.monotonic() < deadline, f"writer did not reach the rename in {timeout} s"
        time.sleep(0.05)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # renamed away between the listing and the stat
        return 0


def test_writer_temp_is_hidden_from_every_reader_and_named_as_the_fault_tests_expect(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the new bytes sit in the temp file, readers see the old file only; the temp's name is
    the one tests/store_checks.py looks for (so its "no stray temp" check can fail)."""
    import alignsweep
    from alignsweep.store import fs

    sweep = str(tmp_path / "demo")
    write_manifest(sweep)
    old = _old_file(sweep)
    seen: dict[str, object] = {}

    def before_rename(temp: str) -> None:
        seen["temp"] = Path(temp)
        seen["temps"] = stray_temps(Path(sweep))
        seen["glob"] = sorted(p.name for p in old.parent.glob("*.parquet"))
        con = alignsweep.open(sweep)
        seen["rows"] = con.execute("SELECT trial_id, step, value FROM metrics ORDER BY ALL").fetchall()
        con.close()

    monkeypatch.setattr(fs, "before_rename", before_rename)
    write_records(sweep, "metrics", [{**METRIC, "value": 0.25}, {**METRIC, "category": "S2", "value": 0.5}],
                  trial_id="t1", step=5)
    temp = seen["temp"]
    assert temp.parent == old.parent and WRITER_TEMP.match(temp.name), temp.name
    assert WRITER_TEMP.match(temp.name)["target"] == old.name
    assert seen["temps"] == [temp]
    assert seen["glob"] == [old.name]  # the temp is invisible to `*.parquet` globs …
    assert seen["rows"] == [("t1", 5, 0.9)]  # … and to the views: the old row only
    assert not temp.exists() and stray_temps(Path(sweep)) == []
    assert pq.read_table(old)["value"].to_pylist() == [0.25, 0.5]
    assert_store_clean(Path(sweep))


def test_write_through_pyarrow_fs_uri_and_subtree(tmp_path: Path) -> None:
    uri = (tmp_path / "remote" / "demo").as_uri()
    path = write_records(uri, "metrics", [METRIC], trial_id="t1", step=1)
    assert path.startswith("file://") and (tmp_path / "remote/demo/store/metrics/t1__step-00000001.parquet").exists()
    subtree = pafs.SubTreeFileSystem(str(tmp_path / "bucket"), pafs.LocalFileSystem())
    write_records("sweeps/demo", "metrics", [METRIC], trial_id="t1", step=2, filesystem=subtree)
    write_manifest("sweeps/demo", seed=3, filesystem=subtree)
    assert (tmp_path / "bucket/sweeps/demo/store/metrics/t1__step-00000002.parquet").exists()
    assert read_manifest("sweeps/demo", filesystem=subtree)["seed"] == 3
    assert not list((tmp_path / "bucket").rglob("*.tmp"))


def test_manifest_lifecycle(tmp_path: Path) -> None:
    sweep = str(tmp_path / "demo")
    assert read_manifest(sweep) is None
    started = write_manifest(sweep, seed=7)
    assert started["schema_versions"] == SCHEMA_VERSIONS and started["finished"] is None
    assert started["packages"]["pyarrow"] == pa.__version__ and started["sweep"] == "demo"
    update_manifest(sweep, resumed=["2026-01-01T00:00:00+00:00"])
    done = mark_finished(sweep)
    on_disk = json.loads((tmp_path / "demo/manifest.json").read_text())
    assert on_disk == done and on_disk["finished"] and on_disk["started"] == started["started"] and on_disk["resumed"]
    assert [p.name for p in (tmp_path / "demo").iterdir()] == ["manifest.json"]  # no temp files left


def test_store_readable_without_alignsweep(tmp_path: Path) -> None:
    sweep = build_sweep(str(tmp_path / "demo"), configs=1, items=True)
    store = tmp_path / "demo" / "store"
    script = textwrap.dedent(
        f"""
        import sys, duckdb, pandas as pd, pyarrow.dataset as ds
        assert not any(m.startswith("alignsweep") for m in sys.modules)
        store = {str(store)!r}
        n_duck = duckdb.sql(f"SELECT count(*) FROM read_parquet('{{store}}/metrics/*.parquet')").fetchall()[0][0]
        n_ds = ds.dataset(f"{{store}}/metrics", format="parquet").count_rows()
        n_pd = len(pd.read_parquet(f"{{store}}/metrics"))
        trials = ds.dataset(f"{{store}}/trials", format="parquet").to_table()
        items = pd.read_parquet(f"{{store}}/fairness_items")
        print(n_duck, n_ds, n_pd, trials.num_rows, len(items.loglikelihoods.iloc[0]))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    n_metrics = len(pq.ParquetDataset(str(store / "metrics")).read())
    assert out == [str(n_metrics)] * 3 + [str(len(sweep.trial_ids) + len(sweep.base_ids)), "3"]


def test_no_duplicate_keys_after_rerunning_a_sweep(tmp_path: Path) -> None:
    build_sweep(str(tmp_path / "demo"), seed=1)
    build_sweep(str(tmp_path / "demo"), seed=2)  # a full rerun into the same directory
    dupes = duckdb.sql(
        f"""SELECT trial_id, step, benchmark, category, metric, count(*) FROM read_parquet('{tmp_path}/demo/store/metrics/*.parquet')
            GROUP BY ALL HAVING count(*) > 1"""
    ).fetchall()
    assert dupes == []
    assert pd.read_parquet(tmp_path / "demo/store/trials").trial_id.is_unique


def test_store_checks_catch_a_stray_temp_a_partial_file_and_a_duplicate_row(tmp_path: Path) -> None:
    """tests/store_checks.py is what the fault tests trust: each kind of damage must make it fail."""
    sweep = tmp_path / "demo"
    build_sweep(str(sweep), families={"tiny:llama": "llama"}, methods=("lora",), configs=2, items=True)
    assert_store_clean(sweep)
    metrics = sweep / "store" / "metrics"
    victim = sorted(metrics.glob("*.parquet"))[-1]

    temp = metrics / f".{victim.name}.4242-0123abcd.tmp"  # what a writer killed before its rename leaves
    temp.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(AssertionError):
        assert_store_clean(sweep)
    assert_store_clean(sweep, allow_stray_temps=True)  # hidden: no reader sees it
    temp.rename(metrics / "visible.parquet.tmp")  # not the writer's name: never acceptable
    with pytest.raises(AssertionError):
        assert_store_clean(sweep, allow_stray_temps=True)
    (metrics / "visible.parquet.tmp").unlink()

    (metrics / "copy.parquet").write_bytes(victim.read_bytes())  # the same rows twice
    with pytest.raises(AssertionError, match="metrics"):
        assert_store_clean(sweep)
    (metrics / "copy.parquet").write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])  # a partial file
    with pytest.raises((pa.ArrowInvalid, duckdb.Error, OSError, InputError)):  # views name an unreadable file
        assert_store_clean(sweep)
