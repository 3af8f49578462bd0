"""Faults of the results storage, done for real: the disk fills up mid-sweep (a small tmpfs as
`--results`, filled by a ballast file once the first trial has finished), and a store file is
truncated between runs. What must hold: one clear line instead of a stack, nothing half-written
visible to readers, and `resume` completing with nothing lost or doubled.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from store_checks import assert_store_clean
from test_faults import cli as cli_process
from test_faults import finish, reap, sql, terminated, wait_for, write_spec

pytestmark = pytest.mark.slow
KEYS = "SELECT trial_id, step, benchmark, category, metric FROM metrics WHERE method <> 'base'"


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs of its own (root only: mounting needs CAP_SYS_ADMIN)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Write a ballast file until the disk refuses another byte (ENOSPC)."""
    ballast = folder / "ballast"
    with open(ballast, "wb", buffering=0) as out:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError:
                continue
    return ballast


def rows(sweep_dir: Path, query: str) -> list[tuple]:
    """Rows with NaN as None, so that equal rows compare equal."""
    return [tuple(None if v != v else v for v in r) for r in sql(sweep_dir, query)]


def per_trial_keys(sweep_dir: Path) -> dict[str, set[tuple]]:
    keys: dict[str, set[tuple]] = {}
    for trial, *rest in sql(sweep_dir, KEYS):
        keys.setdefault(trial, set()).add(tuple(rest))
    return keys


def test_results_disk_full_stops_with_one_line_and_resume_completes(small_disk: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIGNSWEEP_MIN_FREE_MB", "8")  # the preflight's floor, below this small disk's size
    rates = [1e-2, 5e-3, 2e-3]
    spec = write_spec(tmp_path, "full", rates)
    # every trial created at the start (two run at once on 2 CPUs), so Tune's search has ended before the fill
    spec.write_text(spec.read_text().replace("max_concurrent: 1", "max_concurrent: 3"))
    sweep_dir = small_disk / "results" / "full"
    run = cli_process("run", str(spec), "--results", str(small_disk / "results"))
    try:
        wait_for(lambda: list(sweep_dir.glob("tune/*/checkpoint_000000/trial.json")), run)  # a first checkpoint
        ballast = fill(small_disk)
        rc, out = finish(run, timeout=400)
    finally:
        reap(run)
    assert rc == 1, out[-3000:]
    line = f"alignsweep: error: results disk full: {sweep_dir}: No space left on device — free space and run " \
           f"`alignsweep resume {sweep_dir}`"
    assert line in out.splitlines(), out[-3000:]
    assert "Traceback" not in out
    assert_store_clean(sweep_dir, allow_stray_temps=True)  # what readers see is whole
    assert len(terminated(sweep_dir)) < len(rates)  # it really stopped mid-sweep

    ballast.unlink()  # space freed
    rc, out = finish(cli_process("resume", str(sweep_dir)), timeout=400)
    assert rc == 0, out[-3000:]
    assert len(terminated(sweep_dir)) == len(rates)
    assert_store_clean(sweep_dir, allow_stray_temps=True)
    keys = per_trial_keys(sweep_dir)  # every trial has every key an uninterrupted trial has, once
    assert len(keys) == len(rates) and all(k == keys[min(keys)] for k in keys.values()), keys
    assert {step for step, *_ in keys[min(keys)]} == {0, 2, 4}


def test_a_truncated_store_file_is_named_by_query_and_rewritten_by_resume(tmp_path: Path, cli) -> None:
    from alignsweep.engine.sweep import run_sweep
    from alignsweep.spec.config import load_spec

    spec = load_spec(write_spec(tmp_path, "torn", [1e-2]))
    assert run_sweep(spec, results=str(tmp_path / "results"), num_cpus=2).errors == 0
    sweep_dir = tmp_path / "results" / "torn"
    everything = {t: rows(sweep_dir, f"SELECT * FROM {t} ORDER BY ALL")
                  for t in ("metrics", "safety_items", "fairness_items")}
    trials = sql(sweep_dir, "SELECT trial_id, status, steps, train_loss, ended FROM trials ORDER BY 1")
    trial_id = trials[1][0] if trials[0][0].endswith("-base") else trials[0][0]
    torn = [sweep_dir / "store" / "metrics" / f"{trial_id}__step-00000004.parquet",
            sweep_dir / "store" / "safety_items" / f"{trial_id}__step-00000000.parquet",
            sweep_dir / "store" / "trials" / f"{trial_id}.parquet"]
    for path in torn:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    result = cli("query", sweep_dir, "SELECT count(*) FROM metrics")
    assert result.code == 2
    assert len(result.err_lines) == 1 and "Traceback" not in result.err
    line = result.err_lines[0]
    assert any(f"{p}: not a readable Parquet file" in line for p in torn) and "(and 2 more)" in line, line
    assert f"`alignsweep resume {sweep_dir}` sets it aside and rewrites what it held" in line

    resumed = cli("resume", sweep_dir, "--num-cpus", "2")
    assert resumed.code == 0, resumed.err[-3000:]
    assert sorted(p.name for p in (sweep_dir / "corrupt").rglob("*.parquet")) == sorted(p.name for p in torn)
    assert_store_clean(sweep_dir)
    for table, before in everything.items():  # the very rows that were lost, and nothing doubled
        assert rows(sweep_dir, f"SELECT * FROM {table} ORDER BY ALL") == before, table
    assert sql(sweep_dir, "SELECT trial_id, status, steps, train_loss, ended FROM trials ORDER BY 1") == trials
