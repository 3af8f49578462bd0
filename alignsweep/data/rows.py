"""Rows from any data source a user names: a JSONL or CSV file, a `datasets` folder, `hf:<id>[@<revision>][:<split>]`,
or one of our bundled files. Training data and every benchmark read through here, so a malformed
file is always the same one-line `InputError` naming the file and the line.
"""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from alignsweep.errors import InputError

BUNDLED = "bundled"


def bundled_path(name: str) -> Path:
    path = Path(str(resources.files("alignsweep.data").joinpath(name)))
    if not path.is_file():
        raise InputError(f"bundled data file {name!r} is missing from alignsweep/data/")
    return path


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # a BOM (Windows editors) is no data
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number; arrays nested 100,000 deep
            raise InputError(f"{path}:{number}: not valid JSON ({(str(exc).split(';') or [''])[0]})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{number}: expected a JSON object")
        yield number, row


def read_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                if None in row:  # more cells than header fields
                    raise InputError(f"{path}:{reader.line_num}: more cells than the header has columns")
                yield reader.line_num, row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read as CSV ({' '.join(str(exc).split())})") from None


def parse_hub_source(source: str) -> tuple[str, str | None, str]:
    """`hf:org/set@v1.0:test` → ('org/set', 'v1.0', 'test'): the dataset id, its pinned revision (a
    branch, tag or commit; None: the default branch) and the split (default `train`)."""
    name, _, split = source.removeprefix("hf:").partition(":")
    name, at, revision = name.partition("@")
    if at and not revision:
        raise InputError(f"{source}: empty revision after '@' (give a branch, tag or commit, or drop the '@')")
    return name, revision or None, split or "train"


def _read_hf(source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """`hf:<id>[@<revision>][:<split>]` from the hub (or its cache), or a `save_to_disk` directory."""
    import datasets

    hub = parse_hub_source(source) if source.startswith("hf:") else None
    try:
        if hub:
            name, revision, split = hub
            ds = datasets.load_dataset(name, split=split, revision=revision)
        else:
            ds = datasets.load_from_disk(source)
            if isinstance(ds, datasets.DatasetDict):
                ds = ds["test"] if "test" in ds else ds[next(iter(ds))]
    except Exception as exc:  # noqa: BLE001 — any failure to open the dataset is the user's input
        raise InputError(f"{source}: cannot load dataset ({exc})") from None
    for number, row in enumerate(ds, start=1):
        yield number, dict(row)


def read_rows(source: str) -> tuple[str, Iterator[tuple[int, dict[str, Any]]]]:
    """(where, rows) for a JSONL/CSV file, a datasets folder or an `hf:` id."""
    if source.startswith("hf:"):
        return source, _read_hf(source)
    path = Path(source).expanduser()
    if not path.exists():
        raise InputError(f"{source}: no such file or directory")
    if path.is_dir():
        return source, _read_hf(str(path))
    if path.suffix.lower() == ".csv":
        return str(path), read_csv(path)
    return str(path), read_jsonl(path)
