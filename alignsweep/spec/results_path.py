"""The results path, checked before anything is written: creatable, writable, with room; on object storage, a
bucket these credentials can see. Used by `run`, `audit` (--results, --summary-dir), `report --out` and
`query --output`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from alignsweep.errors import InputError

#: Free space a local results directory needs before a sweep starts (override: ALIGNSWEEP_MIN_FREE_MB).
DEFAULT_MIN_FREE_MB = 256


def check_results_dir(sweep_dir: str) -> None:
    """The sweep directory can be created and written, with room to spare; on object storage, its bucket exists."""
    if "://" in sweep_dir:
        _check_bucket(sweep_dir)
        return
    if "\x00" in sweep_dir:
        raise InputError(f"results path {sweep_dir!r}: contains a NUL character")
    target = Path(sweep_dir)
    existing = target
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"results path {sweep_dir!r}: {existing} is a file, not a directory")
    probe = existing / f".alignsweep-write-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"results path {sweep_dir!r}: cannot write in {existing} ({exc.strerror or exc})") from None
    need = os.environ.get("ALIGNSWEEP_MIN_FREE_MB", str(DEFAULT_MIN_FREE_MB))
    if not need.strip().isdigit():
        raise InputError(f"ALIGNSWEEP_MIN_FREE_MB={need!r}: not a whole number of MiB")
    need_mb = int(need)
    free_mb = shutil.disk_usage(existing).free // 2**20
    if free_mb < need_mb:
        raise InputError(f"results path {sweep_dir!r}: only {free_mb} MiB free on its file system, "
                         f"need at least {need_mb} MiB (ALIGNSWEEP_MIN_FREE_MB)")


def _check_bucket(uri: str) -> None:
    """An `s3://` / `gs://` results URI names a bucket these credentials can see (else every write fails mid-sweep)."""
    import pyarrow.fs as pafs

    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        if fs.type_name not in ("s3", "gcs"):
            return
        bucket = path.split("/", 1)[0]
        found = fs.get_file_info(bucket).type != pafs.FileType.NotFound
    except (OSError, ValueError) as exc:  # unreachable endpoint, bad credentials, malformed URI
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"results path {uri!r}: cannot reach it ({first})") from None
    if not found:
        raise InputError(f"results path {uri!r}: bucket {bucket!r} does not exist (or these credentials cannot see it)")
