"""`manifest.json`: what produced a sweep directory — schema versions, package versions, seed, git
revision, when it started and whether it finished.

Readers use it to tell a finished sweep from one still running (no `finished`) and to know which
schema version each table was written with. Only the sweep driver writes it; every write is
atomic, so a reader sees the old manifest or the new one.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from alignsweep.errors import InputError
from alignsweep.store import fs as store_fs
from alignsweep.store.schemas import SCHEMA_VERSIONS

MANIFEST = "manifest.json"
_PACKAGES = ("alignsweep", "pyarrow", "duckdb", "pandas", "torch", "transformers", "peft", "ray", "accelerate", "datasets")


def now() -> str:
    """UTC timestamp in ISO 8601, the format of `started` and `finished`."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_manifest(
    results_dir: str,
    *,
    seed: int | None = None,
    sweep: str | None = None,
    extra: dict[str, Any] | None = None,
    filesystem: pafs.FileSystem | None = None,
) -> dict[str, Any]:
    """Start a sweep's manifest (replacing any old one): versions, seed, git revision, `started` = now.

    Call it once when a sweep starts; use `update_manifest` on resume and `mark_finished` at the end.
    """
    manifest: dict[str, Any] = {
        "sweep": sweep or Path(results_dir.rstrip("/")).name,
        "schema_versions": dict(SCHEMA_VERSIONS),
        "packages": _package_versions(),
        "accelerator": accelerator_versions(),
        "python": platform.python_version(),
        "seed": seed,
        "git_revision": _git_revision(),
        "started": now(),
        "finished": None,
        **(extra or {}),
    }
    _write(results_dir, manifest, filesystem)
    return manifest


def update_manifest(results_dir: str, *, filesystem: pafs.FileSystem | None = None, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into the manifest (creating a minimal one if there is none) and return it.

    Read-modify-write: only the sweep driver calls it, never concurrent trials.
    """
    manifest = read_manifest(results_dir, filesystem=filesystem) or {"schema_versions": dict(SCHEMA_VERSIONS)}
    manifest.update(fields)
    _write(results_dir, manifest, filesystem)
    return manifest


def mark_finished(results_dir: str, *, filesystem: pafs.FileSystem | None = None) -> dict[str, Any]:
    """Record that the sweep finished now; readers treat a manifest without `finished` as still running."""
    return update_manifest(results_dir, filesystem=filesystem, finished=now())


def read_manifest(results_dir: str, *, filesystem: pafs.FileSystem | None = None) -> dict[str, Any] | None:
    """The manifest as a dict, or None where the sweep directory has none yet."""
    fs, root = store_fs.resolve(results_dir, filesystem)
    data = store_fs.read_bytes(fs, store_fs.join(root, MANIFEST))
    if data is None:
        return None
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise InputError(f"{store_fs.join(root, MANIFEST)}: not valid JSON ({exc}); this sweep directory is "
                         "damaged") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{store_fs.join(root, MANIFEST)}: not a JSON object; this sweep directory is damaged")
    return manifest


def _write(results_dir: str, manifest: dict[str, Any], filesystem: pafs.FileSystem | None) -> None:
    fs, root = store_fs.resolve(results_dir, filesystem)
    payload = (json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n").encode()
    store_fs.write_atomic(fs, store_fs.join(root, MANIFEST), lambda out: out.write(payload))


def _package_versions() -> dict[str, str | None]:
    from alignsweep import __version__

    versions: dict[str, str | None] = {"alignsweep": __version__}
    for name in _PACKAGES[1:]:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def accelerator_versions() -> dict[str, str | None]:
    """The driver machine's torch build, the CUDA it was built for and the NVIDIA driver (None where absent).

    Read without importing torch (the driver never loads a model): the CUDA version from the wheel's
    local tag (`2.6.0+cu124` → `12.4`; `+cpu` → None), the driver from `nvidia-smi`. Where trials and
    evaluators actually ran is in `trials.device` and `metrics.device`.
    """
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    cuda = None
    tag = (torch_version or "").partition("+")[2]
    if tag.startswith("cu") and tag[2:].isdigit() and len(tag) > 3:
        cuda = f"{tag[2:-1]}.{tag[-1]}"
    elif torch_version and not tag:  # PyPI's Linux wheels carry no tag: the CUDA runtime package says
        try:
            runtime = metadata.version("nvidia-cuda-runtime-cu12")
            cuda = ".".join(runtime.split(".")[:2])
        except metadata.PackageNotFoundError:
            pass
    driver = None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.split()
        driver = out[0] if out else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"torch": torch_version, "cuda": cuda, "driver": driver}


def _git_revision() -> str | None:
    """The alignsweep checkout's commit (suffixed `-dirty` with local changes), None outside git."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{rev}-dirty" if dirty else rev or None
