"""A two-node Ray cluster on this machine whose nodes cannot see each other's temporary directories.

Why: a trial saves each checkpoint's adapter into a scratch directory on its own node and the
evaluator that scores it usually runs on another host. `ray.cluster_utils.Cluster` nodes share this
machine's /tmp, so a path handed from trial to evaluator always opened there and nothing caught an
evaluator reading the trial's files. Here the trial node runs in its own mount namespace
(`unshare --mount --propagation private`) with a private tmpfs as its TMPDIR (Ray's workers on that
node inherit it), so what a trial writes under `tempfile` is invisible to every other process —
checked first, from a Ray task on the evaluator node. Trials are pinned to that node, evaluators and
the judge to the other; the sweep (a driver joining by address) must score every checkpoint.

Needs root (mount namespaces, tmpfs); skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

pytestmark = pytest.mark.slow

TRIAL_NODE, EVAL_NODE = "trial_node", "eval_node"  # custom resources that pin work to each node
MAX_STEPS, EVAL_INTERVAL = 4, 2
LEARNING_RATES = [1e-2, 5e-3]


def _unshare_unavailable() -> str | None:
    """Why a private mount namespace with its own tmpfs cannot be made here (None: it can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root: a node's private TMPDIR is a tmpfs mounted in its own mount namespace"
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "needs util-linux `unshare` and `mount`"
    probe = tempfile.mkdtemp(prefix="as-unshare-")
    try:
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs",
                               "-o", "size=1m", "alignsweep-probe", probe], capture_output=True, text=True, timeout=30)
    finally:
        os.rmdir(probe)
    if done.returncode != 0:
        return f"cannot mount a tmpfs in a private mount namespace: {done.stderr.strip() or done.returncode}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray head exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"ray head not listening on {port} after {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen, timeout: float = 60) -> None:
    """End one `ray start --block` by its id: SIGTERM shuts its node down; SIGKILL only as a last resort."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def private_tmp_cluster(tiny_paths) -> Iterator[dict]:
    """Head (evaluators, judge) + a worker node in its own mount namespace whose TMPDIR is a private tmpfs."""
    reason = _unshare_unavailable()
    if reason:
        pytest.skip(reason)
    import alignsweep
    from conftest import test_cache_dir

    tiny_paths["llama"]  # built once here, not by two nodes at the same time
    root = Path(tempfile.mkdtemp(prefix="as-ptmp-", dir="/tmp"))  # short: Ray's socket paths live under it
    trial_tmp = root / "trial-tmp"
    trial_tmp.mkdir()
    port = _free_port()
    package_root = str(Path(alignsweep.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "TMPDIR")}
    env.update({
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex,  # this cluster's own token, not ~/.ray's
        "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_VERBOSITY": "error", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
        "ALIGNSWEEP_CACHE": str(test_cache_dir()),
        "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p),
    })
    ray_bin = str(Path(sys.executable).with_name("ray"))
    common = ["--block", "--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    procs: list[subprocess.Popen] = []
    logs = {name: open(root / f"{name}.log", "w") for name in ("head", "trial_node")}
    try:
        head = subprocess.Popen(
            [ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={root / 'ray'}",
             f"--resources={json.dumps({EVAL_NODE: 4})}", *common],
            env=env, stdout=logs["head"], stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(head)
        _wait_for_port(port, head, root / "head.log")
        # unshare execs (no fork) and sh execs ray: the Popen pid is the node's `ray start --block` itself.
        worker = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs -o size=512m alignsweep-trial-tmp "$1" && export TMPDIR="$1" && shift && exec "$@"',
             "sh", str(trial_tmp), ray_bin, "start", f"--address=127.0.0.1:{port}",
             f"--resources={json.dumps({TRIAL_NODE: 1})}", *common],
            env=env, stdout=logs["trial_node"], stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(worker)
        yield {"address": f"127.0.0.1:{port}", "env": env, "root": root, "trial_tmp": trial_tmp}
    finally:
        for proc in reversed(procs):  # the worker node first, then the head
            _stop(proc)
        for log in logs.values():
            log.close()
        # The tmpfs lived only in the worker's namespace, gone with its last process: the folder here is empty.
        leftover = list(trial_tmp.iterdir()) if trial_tmp.exists() else []
        shutil.rmtree(root, ignore_errors=True)
        assert not leftover, f"the trial node's private tmpfs leaked into this namespace: {leftover}"


DRIVER = r'''
import json, os, sys, tempfile, time
import ray

address, out, results, spec_json, trial_res, eval_res = sys.argv[1:]
report = {}
ray.init(address=address, namespace="alignsweep-guard", log_to_driver=False)
try:
    deadline = time.time() + 90
    while len([n for n in ray.nodes() if n["Alive"]]) < 2:
        if time.time() > deadline:
            raise SystemExit(f"only {ray.nodes()} after 90 s")
        time.sleep(0.5)

    @ray.remote(num_cpus=0)
    def make():
        d = tempfile.mkdtemp(prefix="alignsweep-guard-")
        path = os.path.join(d, "adapter_config.json")
        open(path, "w").write("{}")
        return {"path": path, "tmpdir": tempfile.gettempdir(), "node": ray.get_runtime_context().get_node_id()}

    @ray.remote(num_cpus=0)
    def look(path):
        return {"exists": os.path.exists(path), "node": ray.get_runtime_context().get_node_id()}

    made = ray.get(make.options(resources={trial_res: 0.01}).remote())
    report["guard"] = {"made": made,
                       "trial_node": ray.get(look.options(resources={trial_res: 0.01}).remote(made["path"])),
                       "eval_node": ray.get(look.options(resources={eval_res: 0.01}).remote(made["path"]))}
finally:
    ray.shutdown()

from alignsweep.engine.sweep import run_sweep
from alignsweep.spec.config import validate_spec

try:
    outcome = run_sweep(validate_spec(json.loads(spec_json)), results=results, address=address)
    report.update(errors=outcome.errors, trials=outcome.trials, sweep_dir=outcome.sweep_dir,
                  rows=[{k: r.get(k) for k in ("trial_id", "node_id", "status", "steps")} for r in outcome.rows])
except BaseException as exc:
    report["exception"] = f"{type(exc).__name__}: {exc}"
json.dump(report, open(out, "w"), default=str)
'''


def test_evaluators_score_checkpoints_of_a_node_whose_tmp_they_cannot_see(private_tmp_cluster, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    cluster = private_tmp_cluster
    spec = {
        "name": "private-tmp", "seed": 0, "models": ["tiny:llama"],
        "methods": {"lora": {"r": [2]}},
        "training": {"max_steps": MAX_STEPS, "eval_interval": EVAL_INTERVAL, "batch_size": 2, "max_examples": 8,
                     "max_seq_length": 48, "learning_rates": LEARNING_RATES},
        "scheduler": {"name": "none"},
        "resources": {"cpu": 1, "custom": {TRIAL_NODE: 1}},
        "failure": {"max_retries": 0},  # a trial whose evaluation fails must show as an error, not retry
        "evaluation": {
            "safety": {"limit": 1, "max_new_tokens": 4, "judge_resources": {"custom": {EVAL_NODE: 1}}},
            "fairness": {"limit": 2},
            "over_refusal": {"limit": 1},
            "evaluators": {"actors_per_model": 1, "resources": {"custom": {EVAL_NODE: 1}}},
        },
    }
    results = tmp_path / "results"  # shared by both nodes, as `--results` must be on a cluster
    out = tmp_path / "driver.json"
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, cluster["address"], str(out), str(results), json.dumps(spec), TRIAL_NODE,
         EVAL_NODE], env=cluster["env"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0 and out.exists(), f"driver failed ({done.returncode}):\n{done.stderr[-5000:]}"
    report = json.loads(out.read_text())

    # The guard: the test is only real if the evaluator node cannot open the trial node's scratch space.
    guard = report["guard"]
    assert guard["made"]["tmpdir"] == str(cluster["trial_tmp"])
    assert guard["made"]["path"].startswith(str(cluster["trial_tmp"]) + os.sep)
    assert guard["trial_node"] == {"exists": True, "node": guard["made"]["node"]}
    assert guard["eval_node"]["node"] != guard["made"]["node"]
    assert guard["eval_node"]["exists"] is False, "the evaluator node sees the trial node's TMPDIR"

    # The sweep: every trial ran on the private-tmp node, none failed, every checkpoint was scored.
    assert "exception" not in report, report.get("exception")
    assert report["errors"] == 0, report["rows"]
    assert report["trials"] == len(LEARNING_RATES) == len(report["rows"])
    assert {r["node_id"] for r in report["rows"]} == {guard["made"]["node"]}
    metrics = pq.read_table(Path(report["sweep_dir"]) / "store" / "metrics").to_pylist()
    scored = {(r["trial_id"], r["step"]) for r in metrics if r["benchmark"] == "safety" and r["metric"] == "safe_rate"}
    steps = set(range(0, MAX_STEPS + 1, EVAL_INTERVAL))  # the control (step 0), then every interval
    assert {(r["trial_id"], s) for r in report["rows"] for s in steps} <= scored
    assert {r["method"] for r in metrics if (r["trial_id"], r["step"]) in scored} == {"lora", "base"}
    # Tune's persisted checkpoints (what `trials.checkpoint` names) are in the shared results directory.
    checkpoints = list(Path(report["sweep_dir"], "tune").glob("*/checkpoint_*/adapter_model.safetensors"))
    assert len(checkpoints) == len(LEARNING_RATES) * (MAX_STEPS // EVAL_INTERVAL)
