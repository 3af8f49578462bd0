"""Starting and stopping Ray for a sweep: local on one machine, or joining a cluster.

Local instances are sized explicitly (`num_cpus`) and start no dashboard; Ray's token authentication
(on by default since 2.5x) guards its ports. With an address (`auto`, `ray://…`, or `RAY_ADDRESS`)
the driver joins an existing cluster and leaves it running afterwards.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

NAMESPACE = "alignsweep"


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None) -> Iterator[None]:
    """Ray for the duration of a block; shuts down only what it started."""
    import ray

    if ray.is_initialized():  # a caller (a test, a notebook) already owns a Ray session
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=True)
    else:
        ray.init(
            num_cpus=num_cpus or os.cpu_count() or 1,
            num_gpus=num_gpus,
            include_dashboard=False,
            namespace=NAMESPACE,
            _node_ip_address="127.0.0.1",
            configure_logging=True,
            logging_level="WARNING",
        )
    try:
        yield
    finally:
        ray.shutdown()
