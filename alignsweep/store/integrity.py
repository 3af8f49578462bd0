"""Store files that cannot be read (truncated, overwritten, half-copied between runs), found and set aside.

Why: every write is atomic, so a partial file never comes from alignsweep itself — but a disk that
failed, a sync tool or a hand edit can still leave one, and DuckDB then fails the whole query with
its own stack. `query` names the file instead (`unreadable_files`), and `resume` moves it out of the
store (`set_aside`, into `<sweep>/corrupt/`) and re-produces what it held: each file is one
(table, trial, step), which its name says (`writer.file_name`), so the key survives the damage.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from alignsweep.store import fs as store_fs
from alignsweep.store.schemas import TABLES, TRIALS
from alignsweep.store.writer import STORE_DIR

CORRUPT_DIR = "corrupt"  # beside `store/`, so no reader's glob sees a set-aside file


@dataclass(frozen=True)
class StoreFile:
    """One store file and the key it holds; `reason` is why it cannot be read."""

    path: str
    table: str
    trial_id: str
    step: int | None
    reason: str = ""


def key_of(table: str, name: str) -> tuple[str, int | None]:
    """(trial id, step) from a file name `writer.file_name` made (step None for `trials`)."""
    stem = name.removesuffix(".parquet")
    if table == TRIALS:
        return unquote(stem), None
    trial, _, step = stem.rpartition("__step-")
    if not trial or not step.isdigit():  # not a name the writer makes (a copy by hand): no key to restore
        return unquote(stem), None
    return unquote(trial), int(step)


def unreadable_files(sweep_dir: str) -> list[StoreFile]:
    """Every `*.parquet` file of the store whose footer and schema do not read; cheap (footers only)."""
    fs, root = store_fs.resolve(sweep_dir)
    found = []
    for table in TABLES:
        directory = store_fs.join(root, STORE_DIR, table)
        infos = fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
        for info in sorted(infos, key=lambda i: i.path):
            if info.type != pafs.FileType.File or not info.base_name.endswith(".parquet") \
                    or info.base_name.startswith((".", "_")):
                continue
            reason = _unreadable(fs, info.path)
            if reason is not None:
                trial_id, step = key_of(table, info.base_name)
                found.append(StoreFile(info.path, table, trial_id, step, reason))
    return found


def _unreadable(fs: pafs.FileSystem, path: str) -> str | None:
    try:
        with fs.open_input_file(path) as source:
            pq.ParquetFile(source).schema_arrow  # noqa: B018 — reading the footer is the check
        return None
    except (pa.ArrowException, OSError, ValueError) as exc:
        return (str(exc).splitlines() or [type(exc).__name__])[0]


def set_aside(sweep_dir: str, files: list[StoreFile]) -> list[str]:
    """Move each file to `<sweep>/corrupt/<table>/<name>` (replacing an earlier one there); the new paths."""
    fs, root = store_fs.resolve(sweep_dir)
    moved = []
    for f in files:
        target = store_fs.join(root, CORRUPT_DIR, f.table, f.path.rpartition("/")[2])
        fs.create_dir(target.rpartition("/")[0], recursive=True)
        fs.move(f.path, target)
        moved.append(target)
    return moved
