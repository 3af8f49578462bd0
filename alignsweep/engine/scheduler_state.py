"""The scheduler's state in Tune's experiment checkpoint, so `alignsweep resume` keeps ASHA's rungs.

Why a callback: Ray Tune 2.x checkpoints trials, the search algorithm and callbacks, but never calls
the scheduler's `save`/`restore`; a resumed sweep would start every group's ASHA with empty rungs and
compare resumed trials only with what runs after the restart. Tune saves each callback's
`get_state()` with the experiment state and hands it back to `set_state()` on restore, before the
trials are re-added, so this callback carries `scheduler.save()` (every group's inner scheduler, the
alignment rule's streaks, the stop reasons) across. Tune pickles scheduler and callbacks in one
`tuner.pkl`, so after a restore this callback still holds the scheduler Tune runs.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from ray.tune import Callback

logger = logging.getLogger(__name__)


class SchedulerStateCallback(Callback):
    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def get_state(self) -> dict[str, Any] | None:
        fd, path = tempfile.mkstemp(prefix="alignsweep-scheduler-state-")
        os.close(fd)
        try:
            self.scheduler.save(path)
            with open(path, "rb") as source:
                return {"scheduler": source.read()}
        except NotImplementedError:  # FIFO: nothing to keep
            return None
        finally:
            os.unlink(path)

    def set_state(self, state: dict[str, Any]) -> None:
        fd, path = tempfile.mkstemp(prefix="alignsweep-scheduler-state-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(state["scheduler"])
            self.scheduler.restore(path)
        except Exception as exc:  # noqa: BLE001 — a resume with fresh rungs beats no resume
            logger.warning("scheduler state not restored (%s); early stopping starts afresh", exc)
        finally:
            os.unlink(path)
