"""Checks on a results store that do not trust the code under test: what a partial file, a stray
temp file or a duplicate row would look like, read with pyarrow and the product's own views."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq

# `alignsweep.store.fs.write_atomic` writes `<dir>/.<name>.<pid>-<8 hex>.tmp` and renames it onto `<dir>/<name>`.
# tests/test_store.py checks this pattern against a name the writer really produced.
WRITER_TEMP = re.compile(r"^\.(?P<target>.+\.parquet)\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")

ROW_KEYS = {
    "trials": ("trial_id",),
    "metrics": ("trial_id", "step", "benchmark", "category", "metric"),
    "safety_items": ("trial_id", "step", "prompt_id"),
    "fairness_items": ("trial_id", "step", "example_id"),
}


def stray_temps(sweep_dir: Path) -> list[Path]:
    """Temp files a killed writer left in the store (any hidden `*.tmp`)."""
    return sorted(p for p in (Path(sweep_dir) / "store").rglob(".*.tmp"))


def assert_store_clean(sweep_dir: Path, *, allow_stray_temps: bool = False) -> None:
    """Every `*.parquet` file is whole; the product's views see exactly those rows, no row key twice.

    A stray temp file is acceptable only where a writer may have been killed mid-write
    (`allow_stray_temps`), and then it must be the writer's hidden temp name, which no reader sees.
    """
    from alignsweep.analysis.views import open as open_views

    store = Path(sweep_dir) / "store"
    temps = stray_temps(sweep_dir)
    if allow_stray_temps:
        assert all(WRITER_TEMP.match(p.name) for p in temps), temps
    else:
        assert temps == [], temps
    others = [p for p in store.rglob("*") if p.is_file() and p not in temps and p.suffix != ".parquet"]
    assert others == [], others
    con = open_views(str(sweep_dir))
    try:
        for table, keys in ROW_KEYS.items():
            files = sorted((store / table).glob("*.parquet")) if (store / table).is_dir() else []
            rows = sum(pq.read_table(f).num_rows for f in files)  # a partial file raises here
            assert con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(rows,)], table
            key = ", ".join(keys)
            dupes = con.execute(f"SELECT {key}, count(*) c FROM {table} GROUP BY ALL HAVING c > 1").fetchall()
            assert dupes == [], (table, dupes[:5])
    finally:
        con.close()
