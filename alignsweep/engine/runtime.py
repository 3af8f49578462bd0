"""Starting and stopping Ray for a sweep: local on one machine, or joining a cluster.

Local instances are sized explicitly (`num_cpus`), ask for the loopback address, start no
dashboard, and keep Ray's token authentication on (Ray's default for a new local instance since
2.5x; it must be set before `import ray`, so alignsweep does not touch `RAY_AUTH_MODE`): a laptop sweep must not open an unauthenticated job-submission API to the network. What Ray 2.60
cannot do: it rewrites a loopback node IP to the machine's address (`resolve_ip_for_localhost`) and
its GCS, raylet and worker gRPC servers listen on all interfaces (no bind option exists), so the
token is what guards those ports — see docs/bad-input.md § Security.
With an address (`auto`, `host:port`, `ray://…`, or `RAY_ADDRESS`) the driver joins an existing
cluster, takes its resources from it, and leaves it running afterwards. Without one a run always
gets its own instance (`address="local"`): a bare `ray.init()` would instead join whatever cluster
`ray start --head` left running on this machine, or the dead one its address file
(`/tmp/ray/ray_current_cluster`) still names, and then refuse the `num_cpus` a local instance needs.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

NAMESPACE = "alignsweep"
LOOPBACK = "127.0.0.1"


def local_init_kwargs(num_cpus: int | None = None, num_gpus: int | None = None) -> dict[str, object]:
    """`ray.init` arguments for a private local instance (shared by the CLI and tests)."""
    return dict(
        address="local",  # never an existing cluster: see the module doc
        num_cpus=num_cpus or os.cpu_count() or 1,
        num_gpus=num_gpus,
        include_dashboard=False,
        namespace=NAMESPACE,
        _node_ip_address=LOOPBACK,
        configure_logging=True,
        logging_level="WARNING",
        # Ray pre-starts one idle worker per CPU for the first driver; alignsweep runs only actors,
        # which Ray never places on those workers, so they only cost ~1 s of CPU each while Ray starts.
        _system_config={"prestart_worker_first_driver": False},
    )


def cluster_address(address: str | None) -> str | None:
    """The cluster a driver joins: `--address`, else `RAY_ADDRESS`; None: a local instance of its own."""
    return address or os.environ.get("RAY_ADDRESS") or None


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None) -> Iterator[None]:
    """Ray for the duration of a block; shuts down (or disconnects from) only what it started."""
    with ray_starting(address, num_cpus=num_cpus, num_gpus=num_gpus) as ready:
        ready()
        yield


@contextmanager
def ray_starting(address: str | None = None, *, num_cpus: int | None = None,
                 num_gpus: int | None = None) -> Iterator[Callable[[], None]]:
    """Start Ray on a background thread and yield `ready()`, which waits for it (and re-raises its error).

    Why: a local `ray.init` takes 3-5 s of mostly waiting on subprocesses; the driver's own preflight
    and model checks can run meanwhile instead of leaving the trial slots idle. Nothing of Ray's goes
    into the results directory, so a preflight failure inside the block still leaves nothing written:
    on any exit — before `ready()` too — the start is awaited and what it started is shut down.
    """
    import ray

    if ray.is_initialized():  # a caller (a test, a notebook) already owns a Ray session
        yield lambda: None
        return
    address = cluster_address(address)
    kwargs = (dict(address=address, namespace=NAMESPACE, log_to_driver=True) if address
              else local_init_kwargs(num_cpus, num_gpus))
    failure: list[BaseException] = []
    started, done = threading.Event(), threading.Event()

    def start() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as exc:  # handed to ready(): the caller's thread reports it
            failure.append(exc)
        finally:
            started.set()
        # Ray's local processes get PR_SET_PDEATHSIG, which fires when the *thread* that spawned them
        # exits: this thread must outlive the session, so it waits here until the block is left.
        done.wait()

    # ray.init only installs its SIGTERM handler (exit with the signal number) from the main thread;
    # install the same one here so a terminated driver still unwinds through its `finally`s.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
    _WORKER_LOG.addFilter(_not_main_thread_notice)
    _AUTH_LOG.addFilter(_token_auth_notice)
    thread = threading.Thread(target=start, name="alignsweep-ray-start", daemon=True)
    thread.start()

    def ready() -> None:
        started.wait()
        if failure:
            raise failure[0]

    try:
        yield ready
    finally:
        started.wait()
        _WORKER_LOG.removeFilter(_not_main_thread_notice)
        _AUTH_LOG.removeFilter(_token_auth_notice)
        try:
            if ray.is_initialized():
                ray.shutdown()
        finally:
            done.set()
            thread.join()


_WORKER_LOG = logging.getLogger("ray._private.worker")
_AUTH_LOG = logging.getLogger("ray._private.authentication.authentication_token_setup")


def _token_auth_notice(record: logging.LogRecord) -> bool:
    """Drop Ray's notice that it turned token authentication on (what alignsweep wants; README § Safety
    defaults). Ray starts while the spec's inputs are checked, so the notice would otherwise precede a
    bad-input error and break its one-line contract. Its warning that auth is *off* is kept."""
    return "Token authentication is enabled" not in record.getMessage()


def _not_main_thread_notice(record: logging.LogRecord) -> bool:
    """Drop Ray's notice that its SIGTERM handler was skipped off the main thread (ray_starting sets one)."""
    return "SIGTERM handler is not set" not in record.getMessage()
