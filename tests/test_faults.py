"""Faults, by really killing processes: a trial worker, an evaluator and a judge actor (SIGKILL from
inside, via the test-only hook in alignsweep/faults.py), and the driver itself (SIGINT, then SIGKILL
of an `alignsweep` subprocess) followed by `alignsweep resume`.

What must hold afterwards: the sweep completes with no failed trial, finished trials are not rerun,
the store holds no partial file and no duplicate row, and a seeded sweep's final metrics equal those
of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import pytest

from alignsweep.analysis.views import open as open_views
from alignsweep.errors import InputError

from alignsweep.spec.config import load_spec
from alignsweep.faults import ENV as FAULTS_ENV
from store_checks import assert_store_clean

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
METRIC_KEY = "trial_id, step, benchmark, category, metric"

SPEC = """\
name: {name}
seed: 3
models: [tiny:llama]
methods: {{lora: {{r: [2]}}}}
training: {{max_steps: 4, eval_interval: 2, batch_size: 4, max_examples: 16, max_seq_length: 64,
           learning_rates: {rates}}}
scheduler: {{name: none}}
resources: {{cpu: 1, max_concurrent: 1}}
failure: {{max_retries: 2}}
evaluation:
  safety: {{limit: 1, max_new_tokens: 8}}
  fairness: {{limit: 2}}
  over_refusal: {{limit: 1}}
"""


def write_spec(folder: Path, name: str, rates: list[float]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, rates=rates))
    return path


def sql(sweep_dir: Path, query: str) -> list[tuple]:
    """`query` over the product's own views of the store (`alignsweep.analysis.views`)."""
    con = open_views(str(sweep_dir))
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def final_metrics(sweep_dir: Path) -> dict[tuple, float]:
    """(trial, step, benchmark, category, metric) → value; NaN (no items of a kind) as None so it compares equal."""
    return {tuple(r[:5]): (None if r[5] != r[5] else r[5])
            for r in sql(sweep_dir, f"SELECT {METRIC_KEY}, value FROM metrics")}


# ---------------------------------------------------------------- in-process: worker and actor deaths


@pytest.fixture()
def faults_dir(tmp_path: Path) -> Iterator[Path]:
    """Arm faults by file; the env var reaches Ray workers because it is set before `ray.init`."""
    import ray

    folder = tmp_path / "faults"
    folder.mkdir()
    os.environ[FAULTS_ENV] = str(folder)
    from alignsweep.engine.runtime import local_init_kwargs

    ray.init(**{**local_init_kwargs(num_cpus=2), "logging_level": "ERROR"}, log_to_driver=False)
    try:
        yield folder
    finally:
        ray.shutdown()
        os.environ.pop(FAULTS_ENV, None)


def test_killed_trial_worker_evaluator_and_judge_are_retried_and_the_sweep_completes(faults_dir: Path,
                                                                                      tmp_path: Path) -> None:
    from alignsweep.engine.sweep import run_sweep

    for point in ("trial", "evaluator", "judge"):
        (faults_dir / point).write_text("")
    spec = load_spec(write_spec(tmp_path, "faulty", [1e-2]))
    outcome = run_sweep(spec, results=str(tmp_path / "results"))

    killed = {p: int((faults_dir / f"{p}.fired").read_text()) for p in ("trial", "evaluator", "judge")}
    assert len(set(killed.values())) == 3  # three different processes really died …
    for pid in killed.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert outcome.errors == 0  # … and no trial failed for it
    sweep_dir = Path(outcome.sweep_dir)
    assert sql(sweep_dir, "SELECT method, status, steps FROM trials ORDER BY method") == [
        ("base", "TERMINATED", 0), ("lora", "TERMINATED", 4)]
    steps = sql(sweep_dir, "SELECT DISTINCT step FROM metrics WHERE trial_id NOT LIKE '%base' ORDER BY 1")
    assert {(2,), (4,)} <= set(steps)  # every checkpoint scored (step 0 is the untrained control, when on)
    assert_store_clean(sweep_dir)  # no kill point is mid-write: not even a stray temp file


# ---------------------------------------------------------------- the driver: SIGINT, SIGKILL, resume


def cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop(FAULTS_ENV, None)
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen([sys.executable, "-m", "alignsweep.cli.main", *args, "--num-cpus", "2"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    finally:
        reap(proc)


def reap(proc: subprocess.Popen) -> None:
    """Kill what is left of the process group we started (Ray daemons of a SIGKILLed driver)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def wait_for(check: Callable[[], Any], proc: subprocess.Popen, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"driver exited early ({proc.returncode}): {proc.stdout.read()[-3000:]}")
        time.sleep(0.5)
    raise AssertionError("timed out waiting for the sweep to get there")


def terminated(sweep_dir: Path) -> set[str]:
    """Trials finished in the store *and* in Tune's saved experiment state (what `resume` restores)."""
    if not list((sweep_dir / "store" / "trials").glob("*.parquet")):
        return set()
    try:
        rows = sql(sweep_dir, "SELECT trial_id FROM trials WHERE status = 'TERMINATED' AND method <> 'base'")
    except (duckdb.Error, InputError):
        return set()
    states = sorted((sweep_dir / "tune").glob("experiment_state-*.json"))
    try:
        trial_data = json.loads(states[-1].read_text())["trial_data"] if states else []
    except (OSError, ValueError):
        return set()
    saved = {t for t, in rows for data, _ in trial_data if t in data and '"status": "TERMINATED"' in data}
    return saved


def fingerprint(sweep_dir: Path, trial_id: str) -> dict[str, int]:
    """Its store files' mtimes and Tune's result log length: any rerun of the trial changes them."""
    files = {str(p): p.stat().st_mtime_ns for p in (sweep_dir / "store").rglob(f"{trial_id}__*.parquet")}
    result_log = next((sweep_dir / "tune").glob(f"*{trial_id}*/result.json"))
    return {**files, "result.json lines": len(result_log.read_text().splitlines())}


def test_driver_interrupted_then_killed_resumes_to_the_same_results_as_an_uninterrupted_run(tmp_path: Path) -> None:
    # Five trials one at a time: Ctrl-C comes after the first has finished, and Tune's graceful stop
    # (a trial may complete while it saves its state) must still leave some to resume (seen: with
    # three, a loaded 2-core CI machine finished them all before the stop landed).
    rates = [1e-2, 5e-3, 2e-3, 1e-3, 5e-4]
    spec_path = write_spec(tmp_path, "crash", rates)
    results = tmp_path / "results"
    sweep_dir = results / "crash"

    # 1. Ctrl-C once the first trial is finished: a clean stop (exit 130), resumable.
    run = cli("run", str(spec_path), "--results", str(results))
    try:
        first = wait_for(lambda: terminated(sweep_dir), run)  # the trials finished when Ctrl-C is sent
        run.send_signal(signal.SIGINT)
        rc, out = finish(run, timeout=120)
    finally:
        reap(run)
    assert rc == 130, out[-3000:]
    assert "interrupted" in out
    done_before = terminated(sweep_dir)
    assert first <= done_before  # a finished trial stays finished through the interrupt …
    assert len(done_before) < len(rates)  # … and the stop really came mid-sweep
    kept = {t: fingerprint(sweep_dir, t) for t in done_before}

    # 2. resume, and SIGKILL the driver as soon as one more trial has finished.
    resumed = cli("resume", str(sweep_dir))
    try:
        wait_for(lambda: len(terminated(sweep_dir)) > len(done_before), resumed)
        resumed.send_signal(signal.SIGKILL)
    finally:
        reap(resumed)
    assert resumed.returncode == -signal.SIGKILL

    # 3. resume again: the sweep finishes; finished trials were never rerun.
    rc, out = finish(cli("resume", str(sweep_dir)))
    assert rc == 0, out[-3000:]
    assert len(terminated(sweep_dir)) == len(rates)
    assert {t: fingerprint(sweep_dir, t) for t in done_before} == kept
    assert_store_clean(sweep_dir, allow_stray_temps=True)  # SIGKILL may hit the driver mid-write
    assert sql(sweep_dir, "SELECT count(*) FROM trials WHERE status <> 'TERMINATED'") == [(0,)]

    # 4. the same seeded sweep, uninterrupted, stores the same final metrics and losses.
    rc, out = finish(cli("run", str(spec_path), "--results", str(tmp_path / "clean")))
    assert rc == 0, out[-3000:]
    clean = tmp_path / "clean" / "crash"
    assert final_metrics(sweep_dir) == final_metrics(clean)
    loss = "SELECT trial_id, steps, train_loss FROM trials ORDER BY 1"
    assert sql(sweep_dir, loss) == sql(clean, loss)
