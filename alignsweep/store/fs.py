"""Where a sweep directory lives (local path or URI) and how a file lands there atomically.

Every node of a Ray cluster writes into the same results directory, which may be a local path, a
shared file system or an object store; pyarrow.fs gives one interface to all of them, so the
writer and the manifest share this one atomic-write routine.
"""

from __future__ import annotations

import os
import uuid
from typing import Callable

import pyarrow as pa
import pyarrow.fs as pafs

# Test seam: called with the temp path after the bytes are written and before the rename, so a
# test can kill the writer at exactly the moment a non-atomic writer would leave a partial file.
before_rename: Callable[[str], None] | None = None

TEMP_SUFFIX = ".tmp"


def resolve(results_dir: str, filesystem: pafs.FileSystem | None = None) -> tuple[pafs.FileSystem, str]:
    """(file system, path inside it) for a sweep directory given as a path or a URI.

    With an explicit `filesystem` (e.g. a `SubTreeFileSystem`), `results_dir` is a path inside it.
    """
    if filesystem is not None:
        return filesystem, results_dir.rstrip("/")
    if "://" in results_dir:
        fs, path = pafs.FileSystem.from_uri(results_dir)
        return fs, path.rstrip("/")
    return pafs.LocalFileSystem(), os.path.abspath(os.fspath(results_dir))


def is_local(fs: pafs.FileSystem) -> bool:
    return isinstance(fs, pafs.LocalFileSystem)


def join(*parts: str) -> str:
    return "/".join(p.rstrip("/") for p in parts if p)


def write_atomic(fs: pafs.FileSystem, path: str, write: Callable[[pa.NativeFile], None]) -> None:
    """Let `write` fill a stream that lands at `path` so that readers see the old file or the whole new one, never a part.

    The bytes go to a hidden temp file in the same directory (same device, so the rename is atomic
    on POSIX; its name ends in `.tmp`, so `*.parquet` globs and pyarrow.dataset never see it), then
    `move` replaces the target. On object stores `move` is copy + delete and a PUT is atomic anyway.
    A killed writer may leave a stray `.tmp` file behind, never a partial target.
    """
    directory, _, name = path.rpartition("/")
    fs.create_dir(directory, recursive=True)
    temp = join(directory, f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")
    try:
        with fs.open_output_stream(temp) as out:
            write(out)
        if before_rename is not None:
            before_rename(temp)
        fs.move(temp, path)
    except BaseException:
        _delete_quietly(fs, temp)
        raise


def read_bytes(fs: pafs.FileSystem, path: str) -> bytes | None:
    """The file's bytes, or None where it does not exist."""
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as stream:
        return stream.read()


def _delete_quietly(fs: pafs.FileSystem, path: str) -> None:
    try:
        fs.delete_file(path)
    except (OSError, FileNotFoundError):
        pass
