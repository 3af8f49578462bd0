"""Starting and stopping Ray for a sweep: local on one machine, or joining a cluster.

Local instances are sized explicitly (`num_cpus`), ask for the loopback address, start no
dashboard, and keep Ray's token authentication on (Ray's default for a new local instance since
2.5x; it must be set before `import ray`, so alignsweep does not touch `RAY_AUTH_MODE`): a laptop sweep must not open an unauthenticated job-submission API to the network. What Ray 2.60
cannot do: it rewrites a loopback node IP to the machine's address (`resolve_ip_for_localhost`) and
its GCS, raylet and worker gRPC servers listen on all interfaces (no bind option exists), so the
token is what guards those ports — see docs/bad-input.md § Security.
With an address (`auto`, `host:port`, `ray://…`, or `RAY_ADDRESS`) the driver joins an existing
cluster and leaves it running afterwards.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

NAMESPACE = "alignsweep"
LOOPBACK = "127.0.0.1"


def local_init_kwargs(num_cpus: int | None = None, num_gpus: int | None = None) -> dict[str, object]:
    """`ray.init` arguments for a private local instance (shared by the CLI and tests)."""
    return dict(
        num_cpus=num_cpus or os.cpu_count() or 1,
        num_gpus=num_gpus,
        include_dashboard=False,
        namespace=NAMESPACE,
        _node_ip_address=LOOPBACK,
        configure_logging=True,
        logging_level="WARNING",
    )


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None) -> Iterator[None]:
    """Ray for the duration of a block; shuts down (or disconnects from) only what it started."""
    import ray

    if ray.is_initialized():  # a caller (a test, a notebook) already owns a Ray session
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=True)
    else:
        ray.init(**local_init_kwargs(num_cpus, num_gpus))
    try:
        yield
    finally:
        ray.shutdown()
