"""Error types whose class decides the process exit code.

The CLI maps `InputError` to exit 2 (bad input: one clear line, nothing written) and every other
exception to exit 1 (runtime failure). Raise `InputError` as early as possible, before Ray starts
and before anything touches the results directory.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a spec field, a file, a model path. The message is the whole user-facing line."""


class AlignmentCheckFailed(RuntimeError):
    """A tiny model's alignment pre-training did not reach its self-check thresholds."""


class ResultsDiskFull(RuntimeError):
    """The results directory's disk filled up mid-run (exit 1): the message is the whole user-facing line.

    Why its own class: a full disk surfaces as an `OSError` in whichever process wrote (the driver, a
    trial, an evaluator; Ray wraps the latter two), and as a trial retried until it errors; the user
    needs one line saying what happened and that `resume` continues once space is freed, not a stack.
    """

    def __init__(self, sweep_dir: str) -> None:
        super().__init__(f"results disk full: {sweep_dir}: No space left on device — free space and run "
                         f"`alignsweep resume {sweep_dir}`")
        self.sweep_dir = sweep_dir


_ENOSPC_TEXT = "No space left on device"


def is_disk_full(error: object) -> bool:
    """Whether an exception (its causes and contexts included) or an error text says ENOSPC."""
    import errno

    seen: set[int] = set()
    while isinstance(error, BaseException) and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if _ENOSPC_TEXT in str(error):  # Ray's wrapped worker errors carry the text, not the class
            return True
        error = error.__cause__ or error.__context__
    return isinstance(error, str) and _ENOSPC_TEXT in error
