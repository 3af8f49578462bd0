"""The one place evaluators write to the results store (`alignsweep.store.write_records`).

Keeping the coupling here means a store change touches one function. Each (table, trial, step) is
one file that a rerun overwrites, so everything an evaluation produces for a table must go in one call.
"""

from __future__ import annotations

from typing import Any

# Columns evaluators compute that the store's schema does not hold yet. `unknown_index` is needed to
# recompute bias scores from `fairness_items` alone; until the store adds it, it is dropped here.
_PENDING_COLUMNS: dict[str, tuple[str, ...]] = {"fairness_items": ("unknown_index",)}


def persist(results_dir: str, table: str, records: list[dict[str, Any]], *, trial_id: str, step: int) -> str:
    """Write one (table, trial, step) file under the sweep directory `results_dir`; return its path."""
    from alignsweep.store import table_schema, write_records

    drop = {c for c in _PENDING_COLUMNS.get(table, ()) if c not in table_schema(table).names}
    rows = [{k: v for k, v in r.items() if k not in drop} for r in records] if drop else records
    return write_records(results_dir, table, rows, trial_id=trial_id, step=step)
