"""The one way anything writes results: `write_records`, one Parquet file per (table, trial, step).

Why one file per key, under a deterministic name, written atomically: Ray Tune retries failed
trials and `alignsweep resume` replays interrupted ones, so the same (trial, step) may be written
twice; the second write replaces the first instead of adding rows, and a writer killed half-way
leaves the old file or none. Readers therefore never need to deduplicate.
"""

from __future__ import annotations

import posixpath
from typing import Any, Iterable
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from alignsweep.store import fs as store_fs
from alignsweep.store.schemas import (
    ROW_KEYS,
    SCHEMA_VERSIONS,
    TRIALS,
    SchemaError,
    table_schema,
)

STORE_DIR = "store"


def file_name(table: str, trial_id: str, step: int) -> str:
    """The file's path below the sweep directory: `store/<table>/<trial>__step-<step>.parquet`.

    The trial id is percent-quoted so any id maps to one safe, distinct name; the step is zero-padded
    so a listing sorts by step. `trials` holds one row per trial that each write replaces (its
    status and step count change as it runs), so its files are keyed by trial alone.
    """
    if not trial_id:
        raise SchemaError(f"table {table!r}: trial_id must be a non-empty string")
    stem = quote(trial_id, safe="-_.")
    if table == TRIALS:
        return f"{STORE_DIR}/{table}/{stem}.parquet"
    return f"{STORE_DIR}/{table}/{stem}__step-{step:08d}.parquet"


def write_records(
    results_dir: str,
    table: str,
    records: list[dict[str, Any]] | pa.Table,
    *,
    trial_id: str,
    step: int | None = None,
    filesystem: pafs.FileSystem | None = None,
) -> str:
    """Validate `records` against `table`'s schema and write them as the (trial, step) file; return its path.

    `results_dir` is the sweep directory `<results>/<sweep>`: a local path or a URI (`file://`, `s3://` …),
    or a path inside `filesystem`. Records may leave out `trial_id` and `step` (filled from the
    arguments; a different value is an error) and any nullable column. `trials` records may carry
    their hyperparameters as columns or as a nested `hyperparameters` dict; ones the schema does not
    know become extra columns of an inferred type. Raises `SchemaError` for an unknown table, a
    missing required column, an unknown column, a value of the wrong type or a repeated row key.
    `step` is required except for `trials`, where it is ignored.
    """
    schema = table_schema(table)
    if table != TRIALS and (step is None or isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise SchemaError(f"table {table!r}: step must be a non-negative int, got {step!r}")
    constants: dict[str, Any] = {"trial_id": trial_id} if table == TRIALS else {"trial_id": trial_id, "step": step}
    defaults = {"sweep": posixpath.basename(results_dir.rstrip("/")) or None} if table == TRIALS else {}
    if isinstance(records, pa.Table):
        data = records
    else:
        data = _from_records(table, schema, [_flatten(table, r) for r in records])
    data = _conform(table, schema, data, constants, defaults)

    fs, root = store_fs.resolve(results_dir, filesystem)
    relative = file_name(table, trial_id, step or 0)
    store_fs.write_atomic(fs, store_fs.join(root, relative), lambda out: pq.write_table(data, out))
    base = results_dir.rstrip("/") if ("://" in results_dir or filesystem is not None) else root
    return store_fs.join(base, relative)


def _flatten(table: str, record: dict[str, Any]) -> dict[str, Any]:
    if table != TRIALS or "hyperparameters" not in record:
        return record
    flat = {k: v for k, v in record.items() if k != "hyperparameters"}
    for name, value in (record["hyperparameters"] or {}).items():
        if name in flat and flat[name] != value:
            raise SchemaError(f"table 'trials': hyperparameter {name!r} given twice with different values")
        flat[name] = value
    return flat


def _from_records(table: str, schema: pa.Schema, records: list[dict[str, Any]]) -> pa.Table:
    """Build columns with the schema's types (so `1.5` never silently becomes int 1); extras are inferred."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    arrays = {}
    for name in names:
        values = [r.get(name) for r in records]
        if name not in schema.names:
            arrays[name] = _infer(table, name, values)
            continue
        field = schema.field(name)
        if pa.types.is_integer(field.type):
            _check_integers(table, name, values)
        try:
            arrays[name] = pa.array(values, type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SchemaError(f"table {table!r} column {name!r} expects {field.type}: {exc}") from None
    if records and not arrays:
        raise SchemaError(f"table {table!r} row 0: the record is empty")
    return pa.table(arrays)


def _infer(table: str, name: str, values: list[Any]) -> pa.Array:
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaError(f"table {table!r} extra column {name!r} has mixed types: {exc}") from None
    return array.cast(pa.string()) if pa.types.is_null(array.type) else array


def _check_integers(table: str, name: str, values: Iterable[Any]) -> None:
    for value in values:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise SchemaError(f"table {table!r} column {name!r} expects int64, got {value!r}")


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    """Casts that cannot change meaning: nulls, int ↔ float, string flavours, lists of those."""
    if source == target or pa.types.is_null(source):
        return True
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(f(source) for f in numeric) and any(f(target) for f in numeric):
        return True
    strings = (pa.types.is_string, pa.types.is_large_string)
    if any(f(source) for f in strings) and any(f(target) for f in strings):
        return True
    lists = (pa.types.is_list, pa.types.is_large_list)
    if any(f(source) for f in lists) and any(f(target) for f in lists):
        return _castable(source.value_type, target.value_type)
    return False


def _conform(
    table: str, schema: pa.Schema, data: pa.Table, constants: dict[str, Any], defaults: dict[str, Any]
) -> pa.Table:
    """Schema order and types; `constants` filled and checked, `defaults` filled; required columns
    non-null; row keys unique."""
    unknown = [n for n in data.column_names if n not in schema.names]
    if unknown and table != TRIALS:
        raise SchemaError(
            f"table {table!r} has no column(s) {', '.join(map(repr, unknown))} (columns: {', '.join(schema.names)})"
        )
    n = data.num_rows
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    for field in schema:
        if field.name in data.column_names:
            column = data[field.name]
            if not _castable(column.type, field.type):
                raise SchemaError(f"table {table!r} column {field.name!r} expects {field.type}, got {column.type}")
            try:
                column = column.cast(field.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise SchemaError(f"table {table!r} column {field.name!r} expects {field.type}: {exc}") from None
        else:
            column = pa.nulls(n, type=field.type)
        fill = constants.get(field.name, defaults.get(field.name))
        if fill is not None and n:
            column = column.fill_null(pa.scalar(fill, field.type))
        if field.name in constants and n:
            if not pc.all(pc.equal(column, pa.scalar(constants[field.name], field.type))).as_py():
                raise SchemaError(
                    f"table {table!r}: column {field.name!r} disagrees with the {field.name}="
                    f"{constants[field.name]!r} the file is written for"
                )
        if not field.nullable and column.null_count:
            row = pc.index(pc.is_null(column), True).as_py()
            raise SchemaError(f"table {table!r} row {row}: missing required column {field.name!r}")
        columns[field.name] = column
    for name in unknown:
        columns[name] = data[name]
    fields = [*schema, *(pa.field(name, data[name].type) for name in unknown)]
    metadata = {"alignsweep.table": table, "alignsweep.schema_version": str(SCHEMA_VERSIONS[table])}
    result = pa.table(list(columns.values()), schema=pa.schema(fields, metadata=metadata))
    _check_unique(table, result)
    return result


def _check_unique(table: str, data: pa.Table) -> None:
    keys = list(ROW_KEYS[table])
    if data.num_rows < 2:
        return
    counts = data.select(keys).group_by(keys).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    if repeated.num_rows:
        first = {k: repeated[k][0].as_py() for k in keys}
        raise SchemaError(f"table {table!r}: row key {first} appears {repeated['count_all'][0].as_py()} times")
