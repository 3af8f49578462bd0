"""A worker *node* lost mid-sweep, for real: `ray.cluster_utils.Cluster` nodes removed (every process on
them killed at once, as when a machine dies) while an evaluator on one scores and, later, while the
trial on another trains. The sweep's driver is the real CLI joining the cluster by `--address`.

Timing is exact, not slept: the test-only hold points (`alignsweep.faults.maybe_hold`) park the
evaluator mid-request and the trial right after a checkpoint; the test removes that node once the
hold file names a parked pid. What must hold: the request is re-sent to the evaluator restarted on
another node, the trial continues elsewhere from its last checkpoint, the sweep completes, and the
store has every (trial, step) once — nothing lost, nothing doubled.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from alignsweep.faults import ENV as FAULTS_ENV
from alignsweep.faults import HOLD_SUFFIX
from store_checks import assert_store_clean
from test_faults import cli, finish, reap, sql, wait_for

pytestmark = pytest.mark.slow

SPEC = """\
name: lost
seed: 3
models: [tiny:llama]
methods: {lora: {r: [2]}}
training: {max_steps: 4, eval_interval: 2, batch_size: 4, max_examples: 16, max_seq_length: 64, learning_rates: [1e-2]}
scheduler: {name: none}
resources: {cpu: 1, max_concurrent: 1, custom: {trainer: 1}}
failure: {max_retries: 2}
evaluation:
  safety: {limit: 1, max_new_tokens: 8, judge_resources: {cpu: 0, custom: {judges: 1}}}
  fairness: {limit: 2}
  over_refusal: {limit: 1}
  evaluators: {resources: {cpu: 1, custom: {evaluator: 1}}}
"""


@pytest.fixture()
def cluster() -> Iterator[object]:
    """Head (judges only), one trainer node, one evaluator node; Ray's files in a folder of its own."""
    from ray.cluster_utils import Cluster

    folder = Path(tempfile.mkdtemp(prefix="asw-", dir="/tmp"))  # short: Ray's socket paths
    faults = folder / "faults"
    faults.mkdir()
    saved = {k: os.environ.get(k) for k in ("RAY_TMPDIR", FAULTS_ENV)}
    os.environ.update(RAY_TMPDIR=str(folder), **{FAULTS_ENV: str(faults)})  # nodes' workers inherit both
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "resources": {"judges": 2},
                                                      "include_dashboard": False})
    c.faults = faults  # type: ignore[attr-defined]
    c.trainer = c.add_node(num_cpus=1, resources={"trainer": 1})  # type: ignore[attr-defined]
    c.evaluator = c.add_node(num_cpus=1, resources={"evaluator": 1})  # type: ignore[attr-defined]
    c.wait_for_nodes()
    try:
        yield c
    finally:
        c.shutdown()
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        shutil.rmtree(folder, ignore_errors=True)


def held(faults: Path, point: str) -> int | None:
    """The pid parked at `point`, once it has claimed the hold and written its pid."""
    path = faults / f"{point}.held"
    text = path.read_text().strip() if path.is_file() else ""
    return int(text) if text else None


def lose(cluster: object, node: object, resources: dict[str, float]) -> None:
    """Add a replacement node with the same resources, then kill the old one outright."""
    cluster.add_node(num_cpus=1, resources=resources)  # type: ignore[attr-defined]
    cluster.remove_node(node, allow_graceful=False)  # type: ignore[attr-defined]


def test_lost_evaluator_node_and_lost_trainer_node_the_sweep_completes(cluster: object, tmp_path: Path) -> None:
    faults: Path = cluster.faults  # type: ignore[attr-defined]
    for point in ("evaluator", "trial"):
        (faults / f"{point}{HOLD_SUFFIX}").write_text("")
    spec = tmp_path / "lost.yaml"
    spec.write_text(SPEC)
    results = tmp_path / "results"
    run = cli("run", str(spec), "--results", str(results), "--address", cluster.address)  # type: ignore[attr-defined]
    try:
        evaluator_pid = wait_for(lambda: held(faults, "evaluator"), run, timeout=400)
        lose(cluster, cluster.evaluator, {"evaluator": 1})  # type: ignore[attr-defined]
        trial_pid = wait_for(lambda: held(faults, "trial"), run, timeout=400)
        first_trainer = cluster.trainer.node_id  # type: ignore[attr-defined]
        lose(cluster, cluster.trainer, {"trainer": 1})  # type: ignore[attr-defined]
        rc, out = finish(run, timeout=400)
    finally:
        reap(run)
    assert rc == 0, out[-3000:]
    for pid in (evaluator_pid, trial_pid):  # both parked processes died with their nodes
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    sweep_dir = results / "lost"
    assert sql(sweep_dir, "SELECT method, status, steps FROM trials ORDER BY method") == [
        ("base", "TERMINATED", 0), ("lora", "TERMINATED", 4)]
    steps = sql(sweep_dir, "SELECT DISTINCT method, step FROM metrics WHERE benchmark = 'safety' ORDER BY ALL")
    assert steps == [("base", 0), ("lora", 0), ("lora", 2), ("lora", 4)]  # every evaluation stored …
    assert_store_clean(sweep_dir)  # … once: no partial file, no duplicate row
    log = next((sweep_dir / "tune").glob("*/result.json")).read_text().splitlines()
    nodes = [json.loads(line)["node_id"] for line in log]
    assert nodes[0] == first_trainer and nodes[-1] != first_trainer  # continued on the replacement node …
    assert [json.loads(line)["step"] for line in log] == [2, 4]  # … from its step-2 checkpoint, not from 0
