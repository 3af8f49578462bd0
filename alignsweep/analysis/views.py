"""SQL over one or more sweeps' results: DuckDB views named after the store's tables.

Why views over the Parquet files rather than a loaded database: the store stays the one source of
truth, a local view re-reads its glob at every query (a notebook sees a running sweep's new files),
and nothing is copied. Every view carries a `sweep` column (the directory's name) so several sweeps
union cleanly, and always has every column of its table's schema, even before any file exists.

Views: `trials`, `metrics`, `safety_items`, `fairness_items`, and
- `deltas_by_step`: every metric of every non-base trial at every step it was scored, minus its base
  model's value — the base being the trial(s) with method `base`, the same `base_model` and sweep,
  at their latest scored step (the mean where a base was scored more than once), matched on
  benchmark, category and metric;
- `deltas`: the same at each trial's last scored step per benchmark — "what the finished (or
  stopped, or so-far) fine-tune did". Step 0 of a fine-tuned trial is its untrained control, never
  its result, so `deltas` skips it. (The report takes `deltas_by_step` at each trial's last full
  evaluation, one step for all its benchmarks, and at the last step every trial reached.);
- `controls`: each trial's step-0 score (the adapter as initialised) beside its last: the change the
  method's mere presence makes (`presence_delta`) and what training added (`training_delta`);
- `pareto_points` / `pareto`: one row per fully scored trial with its objectives, and whether any
  other trial of the sweep dominates it (see `engine.pareto`). Screen metrics (benchmarks
  `screen_*`, the stopper's cheap subset) appear in the delta views under their own benchmark;
- `tests`: each fine-tuned trial's paired test against its base per benchmark, category and metric
  (exact McNemar or a paired bootstrap) with Benjamini–Hochberg q-values (`analysis.significance`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Sequence

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from alignsweep.analysis.pareto import PARETO_POINTS_SQL, PARETO_SQL
from alignsweep.analysis.significance import create_view as create_tests_view
from alignsweep.errors import InputError
from alignsweep.store import MANIFEST, STORE_DIR, TABLES, TRIALS, table_schema
from alignsweep.store import fs as store_fs

_DELTAS_BY_STEP = """
CREATE VIEW deltas_by_step AS
WITH base_last AS (
    SELECT sweep, trial_id, benchmark, max(step) AS step
    FROM metrics WHERE method = 'base' GROUP BY ALL
), base AS (
    SELECT m.sweep, m.base_model, m.benchmark, m.category, m.metric,
           avg(m.value) AS base_value, CAST(sum(m.n) AS BIGINT) AS base_n
    FROM metrics m
    JOIN base_last l ON m.sweep = l.sweep AND m.trial_id = l.trial_id
                    AND m.benchmark = l.benchmark AND m.step = l.step
    WHERE m.method = 'base'
    GROUP BY ALL
), families AS (
    SELECT sweep, base_model, any_value(family) AS family
    FROM trials WHERE family IS NOT NULL GROUP BY ALL
)
SELECT m.sweep, m.trial_id, m.base_model, coalesce(t.family, f.family) AS family, m.method, m.step,
       m.benchmark, m.category, m.metric, m.value, b.base_value, m.value - b.base_value AS delta,
       m.n, b.base_n
FROM metrics m
JOIN base b ON m.sweep = b.sweep AND m.base_model = b.base_model AND m.benchmark = b.benchmark
           AND m.category = b.category AND m.metric = b.metric
LEFT JOIN trials t ON m.sweep = t.sweep AND m.trial_id = t.trial_id
LEFT JOIN families f ON m.sweep = f.sweep AND m.base_model = f.base_model
WHERE m.method <> 'base'
"""

_DELTAS = """
CREATE VIEW deltas AS
SELECT * FROM deltas_by_step WHERE step > 0
QUALIFY step = max(step) OVER (PARTITION BY sweep, trial_id, benchmark)
"""

_CONTROLS = """
CREATE VIEW controls AS
SELECT c.sweep, c.trial_id, c.base_model, c.family, c.method, c.benchmark, c.category, c.metric,
       c.base_value, c.value AS control_value, c.delta AS presence_delta,
       f.step AS final_step, f.value AS final_value, f.delta AS total_delta,
       f.value - c.value AS training_delta
FROM deltas_by_step c
LEFT JOIN deltas f ON c.sweep = f.sweep AND c.trial_id = f.trial_id AND c.benchmark = f.benchmark
                  AND c.category = f.category AND c.metric = f.metric
WHERE c.step = 0
"""

VIEWS: tuple[str, ...] = (*TABLES, "deltas_by_step", "deltas", "controls", "pareto_points", "pareto", "tests")


@dataclass(frozen=True)
class _Sweep:
    label: str
    fs: pafs.FileSystem
    root: str


def open(*results_dirs: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the store's views over one or more sweep directories.

    `results_dirs` are sweep directories `<results>/<sweep>` (local paths or URIs, or paths inside
    `filesystem`). A table with no files yet is an empty view with the right columns; a table that
    gets its first file after this call stays empty until you open again. Raises `InputError` for a
    path that is not a sweep directory.
    """
    if not results_dirs:
        raise InputError("give at least one sweep results directory")
    sweeps = _sweeps([os.fspath(d) for d in results_dirs], filesystem)
    # No DuckDB progress bar: it would land in piped query output and in the report's terminal tables.
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    try:
        for table in TABLES:  # union_by_name reads every file's schema here
            _create_table_view(con, table, sweeps)
    except duckdb.Error:
        con.close()
        if filesystem is None:
            _raise_if_unreadable([os.fspath(d) for d in results_dirs])
        raise
    con.execute(_DELTAS_BY_STEP)
    con.execute(_DELTAS)
    con.execute(_CONTROLS)
    con.execute(PARETO_POINTS_SQL)
    con.execute(PARETO_SQL)
    create_tests_view(con)
    return con


def run_query(results_dirs: Sequence[str], sql: str) -> pa.Table:
    """The result of `sql` over the sweeps' views; a DuckDB error becomes a one-line `InputError`."""
    con = open(*results_dirs)
    try:
        relation = con.sql(sql)  # None for statements without a result (CREATE, SET …)
        return relation.to_arrow_table() if relation is not None else pa.table({})
    except duckdb.Error as exc:
        _raise_if_unreadable(results_dirs)
        raise InputError(f"SQL error: {one_line(exc)}") from None
    finally:
        con.close()


def _raise_if_unreadable(results_dirs: Sequence[str]) -> None:
    """A store file that does not read (truncated, damaged) is named, not DuckDB's error about it."""
    from alignsweep.store.integrity import unreadable_files

    for directory in results_dirs:
        bad = unreadable_files(directory)
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise InputError(f"{bad[0].path}: not a readable Parquet file ({bad[0].reason}){more}; "
                             f"`alignsweep resume {directory}` sets it aside and rewrites what it held")


def one_line(exc: BaseException) -> str:
    """DuckDB's multi-line message as one line: the error and its "Did you mean" hint, no SQL excerpt."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    kept = [lines[0]] + [line for line in lines[1:] if line.lower().startswith(("did you mean", "candidate"))]
    return " ".join(kept) if lines else type(exc).__name__


def _sweeps(paths: list[str], filesystem: pafs.FileSystem | None) -> list[_Sweep]:
    names = [PurePosixPath(p.rstrip("/")).name or p for p in paths]
    labels = names if len(set(names)) == len(names) else [p.rstrip("/") for p in paths]
    sweeps = []
    for path, label in zip(paths, labels):
        fs, root = store_fs.resolve(path, filesystem)
        _check_sweep_dir(path, fs, root)
        sweeps.append(_Sweep(label, fs, root))
    return sweeps


def _check_sweep_dir(path: str, fs: pafs.FileSystem, root: str) -> None:
    info = fs.get_file_info(root)
    if info.type != pafs.FileType.Directory:
        raise InputError(f"{path}: no such results directory")
    has = {n: fs.get_file_info(store_fs.join(root, n)).type != pafs.FileType.NotFound for n in (MANIFEST, STORE_DIR)}
    if any(has.values()):
        return
    children = fs.get_file_info(pafs.FileSelector(root))
    sweeps = sorted(
        PurePosixPath(c.path).name
        for c in children
        if c.type == pafs.FileType.Directory and fs.get_file_info(store_fs.join(c.path, MANIFEST)).type == pafs.FileType.File
    )
    hint = f" (sweeps inside it: {', '.join(sweeps)})" if sweeps else ""
    raise InputError(f"{path}: not a sweep results directory, no {MANIFEST} or {STORE_DIR}/{hint}")


def _parquet_files(sweep: _Sweep, table: str) -> list[str]:
    directory = store_fs.join(sweep.root, STORE_DIR, table)
    if sweep.fs.get_file_info(directory).type != pafs.FileType.Directory:
        return []
    infos = sweep.fs.get_file_info(pafs.FileSelector(directory))
    return sorted(
        i.path for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(".parquet")
        and not i.base_name.startswith((".", "_"))
    )


def _create_table_view(con: duckdb.DuckDBPyConnection, table: str, sweeps: list[_Sweep]) -> None:
    """`table` = the schema's empty table, UNION ALL BY NAME each sweep's files with its `sweep` label.

    Starting from the empty table guarantees every schema column with its type, whatever columns
    the files have (old schema versions, extra hyperparameters, no files at all).
    """
    schema = table_schema(table)
    if "sweep" in schema.names:
        schema = schema.remove(schema.get_field_index("sweep"))
    con.register(f"_empty_{table}", schema.insert(0, pa.field("sweep", pa.string())).empty_table())
    parts = [f"SELECT * FROM _empty_{table}"]
    exclude = " EXCLUDE (sweep)" if table == TRIALS else ""
    for i, sweep in enumerate(sweeps):
        files = _parquet_files(sweep, table)
        if not files:
            continue
        if store_fs.is_local(sweep.fs):
            pattern = store_fs.join(sweep.root, STORE_DIR, table, "*.parquet")
            source = f"read_parquet({_literal(pattern)}, union_by_name = true, hive_partitioning = false)"
        else:  # object stores: read through pyarrow.fs, the same file system the writer used
            name = f"_files_{table}_{i}"
            con.register(name, _dataset(sweep.fs, files))
            source = name
        parts.append(f"SELECT {_literal(sweep.label)} AS sweep, *{exclude} FROM {source}")
    con.execute(f"CREATE VIEW {table} AS " + " UNION ALL BY NAME ".join(parts))


def _dataset(fs: pafs.FileSystem, files: list[str]) -> ds.Dataset:
    fragments = ds.dataset(files, filesystem=fs, format="parquet")
    schema = pa.unify_schemas([f.physical_schema for f in fragments.get_fragments()], promote_options="permissive")
    return ds.dataset(files, filesystem=fs, format="parquet", schema=schema)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
