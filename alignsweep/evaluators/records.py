"""The one place evaluators write to the results store (`alignsweep.store.write_records`).

Keeping the coupling here means a store change touches one function. Each (table, trial, step) is
one file that a rerun overwrites, so everything an evaluation produces for a table must go in one call.
"""

from __future__ import annotations

from typing import Any


def persist(results_dir: str, table: str, records: list[dict[str, Any]], *, trial_id: str, step: int) -> str:
    """Write one (table, trial, step) file under the sweep directory `results_dir`; return its path."""
    from alignsweep.store import write_records

    return write_records(results_dir, table, records, trial_id=trial_id, step=step)
