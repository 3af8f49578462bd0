"""The environment as input: a Ray head someone keeps running on the laptop (`ray start --head`), and
the address file such a head leaves behind after it dies. A run without `--address` must get its own
local instance whatever it finds; with `RAY_ADDRESS` it joins the head.

Every Ray process here lives under the test's own `RAY_TMPDIR` (its address file, its session logs) and
in a process group of its own, so nothing touches another Ray on this machine: no global `ray stop`.
"""

from __future__ import annotations

import os
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")

SPEC = """\
name: env
seed: 0
models: [tiny:llama]
methods: {lora: {r: [2]}}
training: {max_steps: 2, eval_interval: 2, batch_size: 2, max_examples: 8, max_seq_length: 48, learning_rates: [1e-2]}
scheduler: {name: none}
resources: {cpu: 1, max_concurrent: 1}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(ray_tmp: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])), **extra}
    env.pop("RAY_ADDRESS", None) if "RAY_ADDRESS" not in extra else None
    return env


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


class Head:
    """A real `ray start --head --block` (1 CPU, no dashboard) under `ray_tmp`, ended by its own pid."""

    def __init__(self, ray_tmp: Path) -> None:
        self.temp_dir = ray_tmp / "ray"
        self.address_file = self.temp_dir / "ray_current_cluster"
        self.proc = subprocess.Popen(
            [str(RAY), "start", "--head", "--block", "--num-cpus=1", f"--port={free_port()}",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={self.temp_dir}"],
            env=environment(ray_tmp), stdout=open(ray_tmp / "head.log", "w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self.address = wait_until(self._address, 120, "the head's address file")
        self.session = wait_until(lambda: next(self.temp_dir.glob("session_2*"), None), 30, "the head's session")

    def _address(self) -> str | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"ray start --head exited: {(self.temp_dir.parent / 'head.log').read_text()[-2000:]}")
        return self.address_file.is_file() and self.address_file.read_text().strip() or None

    def drivers(self) -> list[str]:
        """Drivers that ever connected to this head (each leaves a core-driver log in its session)."""
        return sorted(p.name for p in (self.session / "logs").glob("python-core-driver-*"))

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=20)
                break
            except subprocess.TimeoutExpired:
                continue
        # `--block` stops the node's daemons on SIGTERM; what may survive it is in our group only
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture()
def ray_tmp() -> Iterator[Path]:
    """A short folder of its own: Ray's socket paths (`<tmp>/ray/session_…/sockets/plasma_store`) must
    stay under 107 characters, which pytest's tmp_path already nearly uses up."""
    folder = Path(tempfile.mkdtemp(prefix="asw-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture()
def head(ray_tmp: Path) -> Iterator[Head]:
    h = Head(ray_tmp)
    try:
        yield h
    finally:
        h.stop()


def run_cli(ray_tmp: Path, spec: Path, results: Path, *extra: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alignsweep.cli.main", "run", str(spec), "--results", str(results),
                           *extra], cwd=REPO, env=environment(ray_tmp, **env), capture_output=True, text=True,
                          timeout=400)


def finished_trials(sweep_dir: Path) -> list[tuple]:
    from alignsweep.analysis.views import open as open_views

    con = open_views(str(sweep_dir))
    try:
        return con.execute("SELECT method, status, steps FROM trials ORDER BY method").fetchall()
    finally:
        con.close()


def test_a_run_beside_a_live_head_and_after_it_died_gets_its_own_instance(head: Head, ray_tmp: Path,
                                                                          tmp_path: Path) -> None:
    spec = tmp_path / "env.yaml"
    spec.write_text(SPEC)
    # Ray's own lookup, as a bare ray.init() would do it, finds the head: the trap is really set
    from ray._private.services import canonicalize_bootstrap_address

    os.environ["RAY_TMPDIR"] = str(ray_tmp)
    assert canonicalize_bootstrap_address(None) == head.address

    live = run_cli(ray_tmp, spec, tmp_path / "beside", "--num-cpus", "1")
    assert live.returncode == 0, (live.stdout + live.stderr)[-3000:]
    assert "Traceback" not in live.stderr
    assert finished_trials(tmp_path / "beside" / "env") == [("lora", "TERMINATED", 2)]
    assert head.drivers() == []  # the head never saw the run

    head.stop()
    assert head.address_file.read_text().strip() == head.address  # the dead head's address stays behind
    stale = run_cli(ray_tmp, spec, tmp_path / "stale", "--num-cpus", "1")
    assert stale.returncode == 0, (stale.stdout + stale.stderr)[-3000:]
    assert finished_trials(tmp_path / "stale" / "env") == [("lora", "TERMINATED", 2)]


def test_ray_address_joins_the_head_and_takes_its_resources(head: Head, ray_tmp: Path, tmp_path: Path) -> None:
    spec = tmp_path / "env.yaml"
    spec.write_text(SPEC)
    # Ray 2.60's `ray start` turns token authentication on: a joining driver must say so (README § cluster)
    joined = run_cli(ray_tmp, spec, tmp_path / "joined", RAY_ADDRESS=head.address, RAY_AUTH_MODE="token")
    assert joined.returncode == 0, (joined.stdout + joined.stderr)[-3000:]
    assert finished_trials(tmp_path / "joined" / "env") == [("lora", "TERMINATED", 2)]
    assert len(head.drivers()) == 1  # the run was this head's job …
    assert head.proc.poll() is None  # … and left it running
