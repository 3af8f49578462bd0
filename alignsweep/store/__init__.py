"""The results store: Arrow schemas, the one atomic Parquet writer, and the sweep manifest.

It sits at the package top level (not under `engine`) because trials and evaluators write to it and
nothing below the engine may import the engine. Layout of a sweep directory `<results>/<sweep>/`:
`manifest.json` and `store/<table>/<trial>__step-<step>.parquet` (`store/trials/<trial>.parquet`).
"""

from alignsweep.store.manifest import MANIFEST, mark_finished, now, read_manifest, update_manifest, write_manifest
from alignsweep.store.schemas import (
    FAIRNESS_ITEMS,
    HYPERPARAMETERS,
    JUDGE_CHECKS,
    METRICS,
    ROW_KEYS,
    SAFETY_ITEMS,
    SCHEMA_VERSIONS,
    SCHEMAS,
    TABLES,
    TRIALS,
    SchemaError,
    table_schema,
)
from alignsweep.store.writer import STORE_DIR, file_name, write_records

__all__ = [
    "FAIRNESS_ITEMS",
    "HYPERPARAMETERS",
    "JUDGE_CHECKS",
    "MANIFEST",
    "METRICS",
    "ROW_KEYS",
    "SAFETY_ITEMS",
    "SCHEMAS",
    "SCHEMA_VERSIONS",
    "STORE_DIR",
    "TABLES",
    "TRIALS",
    "SchemaError",
    "file_name",
    "mark_finished",
    "now",
    "read_manifest",
    "table_schema",
    "update_manifest",
    "write_manifest",
    "write_records",
]
