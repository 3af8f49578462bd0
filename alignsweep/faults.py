"""Test-only fault injection: a process SIGKILLs itself at a named point, exactly once per armed fault.

Why inside the process: the fault tests must kill the *real* trial worker or actor process at a
known moment (mid-training, mid-request), which the driver cannot time from outside. A fault is
armed by creating the file `<ALIGNSWEEP_FAULTS>/<point>`; the first process reaching that point
claims it by renaming it to `<point>.fired` (atomic, so exactly one process dies) and kills itself
with SIGKILL — no cleanup, no exception, the same as the OOM killer or a lost node. With
`ALIGNSWEEP_FAULTS` unset (always, outside tests) `maybe_die` is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "ALIGNSWEEP_FAULTS"


def maybe_die(point: str) -> None:
    """SIGKILL this process if the fault `point` (e.g. `trial`, `evaluator`, `judge`) is armed."""
    folder = os.environ.get(ENV)
    if not folder:
        return
    armed = os.path.join(folder, point)
    try:
        os.rename(armed, armed + ".fired")
    except OSError:
        return  # not armed, or another process claimed it first
    with open(armed + ".fired", "w") as f:
        f.write(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)


HOLD_SUFFIX = ".hold"


def maybe_hold(point: str, timeout_s: float = 600.0) -> None:
    """Park this process at `point` if `<point>.hold` is armed, so a test can take its whole *node* away.

    Why: a lost node kills every process on it at once, at a moment a test cannot time from outside;
    parked here (after claiming the file by renaming it to `<point>.held`, holding this pid), the
    process is known to be mid-training or mid-request when the test removes the node. Returns after
    `timeout_s` should nobody come (the test then fails on its own checks, not by hanging).
    """
    import time

    folder = os.environ.get(ENV)
    if not folder:
        return
    armed = os.path.join(folder, point + HOLD_SUFFIX)
    held = os.path.join(folder, point + ".held")
    try:
        os.rename(armed, held)
    except OSError:
        return
    with open(held, "w") as f:
        f.write(str(os.getpid()))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.2)
