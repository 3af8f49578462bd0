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
