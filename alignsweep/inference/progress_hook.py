"""Batches done, for whoever is watching: a hook that the long inference loops call after each batch.

Why a context variable and not a parameter: the loops sit three calls below the benchmarks (benchmark
→ generate_replies / score_choices → the batch loop), and a parameter would thread through every
benchmark's signature. With no hook set (trials, evaluator actors) a report is one lookup per batch.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Callable, Iterator

#: (units done, units in this call): prompts for generation, (context, choice) requests for log-likelihoods.
Hook = Callable[[int, int], None]
_HOOK: ContextVar[Hook | None] = ContextVar("alignsweep_batch_hook", default=None)


def batch_done(done: int, total: int) -> None:
    hook = _HOOK.get()
    if hook is not None:
        hook(done, total)


@contextlib.contextmanager
def reporting(hook: Hook) -> Iterator[None]:
    """Call `hook` after every batch that an inference loop in this context finishes."""
    token = _HOOK.set(hook)
    try:
        yield
    finally:
        _HOOK.reset(token)
