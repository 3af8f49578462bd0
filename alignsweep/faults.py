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
