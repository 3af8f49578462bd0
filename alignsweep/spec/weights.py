"""Weight files checked before anything loads them: safetensors whole (header and length agree), pickled
checkpoints refused unless the user opted in. Reads headers only, so a 16 GB shard costs microseconds.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from alignsweep.errors import InputError

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def check_safetensors(path: Path) -> None:
    """A complete safetensors file: header parses and the data section is exactly as long as it says.

    Reads only the header, so a 16 GB shard costs microseconds; a truncated download fails here
    instead of as an opaque error inside a trial.
    """
    try:
        size = path.stat().st_size
        n, header = read_header(path)
        ends = safetensors_ends(header)
    except (OSError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise InputError(f"{path}: truncated or corrupt safetensors file ({exc})") from None
    if 8 + n + max(ends, default=0) != size:
        raise InputError(f"{path}: truncated or corrupt safetensors file "
                         f"({size} bytes, header describes {8 + n + max(ends, default=0)})")


def read_header(path: Path) -> tuple[int, Any]:
    """(header length, parsed JSON header) of a safetensors file — its tensor names, shapes, dtypes and
    offsets — without reading any tensor; ValueError where the first 8 bytes or the header do not parse."""
    size = path.stat().st_size
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise ValueError("shorter than its 8-byte header length")
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8:
            raise ValueError("header runs past the end of the file")
        return n, json.loads(f.read(n))


def safetensors_ends(header: Any) -> list[int]:
    """Where each tensor of a parsed safetensors header ends; ValueError for a header of the wrong shape."""
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    ends = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)):
            raise ValueError(f"tensor {name!r:.60} has no valid data_offsets")
        shape = entry.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape) or not isinstance(entry.get("dtype"), str):
            raise ValueError(f"tensor {name!r:.60} has no valid shape and dtype")
        ends.append(offsets[1])
    return ends


def check_weights(folder: Path, *, what: str, allow_unsafe_weights: bool = False) -> None:
    """Safetensors weights present and whole; pickled ones refused unless the user opted in."""
    safe = sorted(folder.glob("*.safetensors"))
    for file in safe:
        check_safetensors(file)
    if safe:
        return
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickled and not allow_unsafe_weights:
        raise InputError(f"{what} {str(folder)!r}: only pickled weights ({pickled[0]}); alignsweep loads safetensors "
                         "only — convert them, or set allow_unsafe_weights: true for this model")
    if not pickled:
        raise InputError(f"{what} {str(folder)!r}: no weights (*.safetensors) there")
