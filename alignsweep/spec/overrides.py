"""`key=value` overrides of a sweep document: `training.max_steps=60`, `models.0.dtype=bfloat16`.

A key is a dotted path; a number addresses a list item (`training.learning_rates.1=3e-3`), and a
model given as a plain string becomes a mapping when one of its fields is set (`models.0.dtype`
turns `tiny:llama` into `{ref: tiny:llama, dtype: …}`). The value is YAML (`[1e-3,1e-2]`, `true`,
`{r: 4}`). Every key is checked against the spec's fields as it is applied, so a misspelt key is
answered with the override and the closest name (`override 'trainng.max_steps=60': trainng: unknown
field (did you mean 'training'?)`), never blamed on the file it did not come from.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from alignsweep.errors import InputError
from alignsweep.spec.fields import names_at, unknown_field
from alignsweep.suggest import unknown_name
from alignsweep.trainables.methods import METHODS

Path = tuple[str | int, ...]


def _is_index(part: str) -> bool:
    """`0`, `12`: a list index (ASCII digits only: `²` is a digit to `str.isdigit` but no number)."""
    return part.isascii() and part.isdigit()


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)


def split_override(item: str) -> tuple[list[str], Any]:
    """`a.b=[1,2]` → (['a', 'b'], [1, 2]); a malformed key or value is an `InputError` naming `item`."""
    if "=" not in item:
        raise InputError(f"override {item!r}: expected key=value (e.g. training.batch_size=4)")
    key, _, text = item.partition("=")
    parts = key.strip().split(".")
    if not all(p.strip() for p in parts):
        raise InputError(f"override {item!r}: empty field name in {key!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError, RecursionError):  # `!!int x` too
        raise InputError(f"override {item!r}: value {text!r} is not valid YAML") from None
    return [p.strip() for p in parts], value


def apply_override(raw: dict[str, Any], item: str, root: type[BaseModel]) -> list[Path]:
    """Set `item`'s value in `raw` (the document of a `root` spec) in place.

    Returns the paths the override now owns (its key, plus every section it created on the way), so
    an error found later at any of them names the override, not the file.
    """
    parts, value = split_override(item)
    normalise(raw, parts)
    target: Any = raw
    path: Path = ()
    owned: list[Path] = []
    for i, part in enumerate(parts):
        target = _as_container(target, path, item)
        key = _key(target, path, part, item, root)
        path = (*path, key)
        if i == len(parts) - 1:
            _drop_synonym(target, path)
            target[key] = value
            owned.append(path)
            break
        child = target[key] if isinstance(target, list) else target.get(key)
        if child is None and _is_index(parts[i + 1]):
            raise InputError(f"override {item!r}: {_dotted(path)} has 0 item(s); index {parts[i + 1]} is out of range")
        if child is None:
            child = {}
            owned.append(path)
        elif isinstance(child, str) and path[:1] == ("models",) and len(path) == 2:
            child = {"ref": child}  # `models.0.dtype=…` on `models: [tiny:llama]`
        target[key] = child
        target = child
    return owned


def _drop_synonym(target: Any, path: Path) -> None:
    """Setting a method field by one spelling (`lora_alpha`) replaces the file's other one (`alpha`)."""
    if len(path) != 3 or path[0] != "methods" or path[1] not in METHODS or not isinstance(target, dict):
        return
    aliases = METHODS.get(str(path[1])).peft_aliases
    synonyms = {a: n for a, n in aliases.items()} | {n: a for a, n in aliases.items()}
    target.pop(synonyms.get(str(path[2]), None), None)


def _as_container(target: Any, path: Path, item: str) -> Any:
    """The mapping or list to look `part` up in; a scalar in the way is bad input."""
    if isinstance(target, (dict, list)):
        return target
    raise InputError(f"override {item!r}: {_dotted(path)} is {type(target).__name__} {target!r}, not a section or "
                     f"list (set it whole: {_dotted(path)}=…)")


def _key(target: Any, path: Path, part: str, item: str, root: type[BaseModel]) -> str | int:
    """`part` as a list index or a mapping key, checked against the fields the spec has at `path`."""
    if isinstance(target, list):
        if not _is_index(part):
            raise InputError(f"override {item!r}: {_dotted(path)} is a list; address an item by its "
                             f"index ({_dotted((*path, 0))}…)")
        index = int(part)
        if index >= len(target):
            raise InputError(f"override {item!r}: {_dotted(path)} has {len(target)} item(s); "
                             f"index {index} is out of range")
        return index
    names = names_at(root, path)
    if isinstance(names, list) and part not in names:
        raise InputError(f"override {item!r}: {_dotted((*path, part))}: {unknown_field(root, (*path, part))}")
    if isinstance(names, tuple) and part not in names[1]:
        raise InputError(f"override {item!r}: {_dotted((*path, part))}: {unknown_name(names[0], part, names[1])}")
    return part


def normalise(raw: dict[str, Any], parts: list[str]) -> None:
    """Shorthands an override descends through, spelled out: `models: tiny:llama` → a list, and
    `methods: [lora, ia3]` → `{lora: {}, ia3: {}}` (what validation makes of them anyway)."""
    if parts[0] == "models" and len(parts) > 1 and isinstance(raw.get("models"), (str, dict)):
        raw["models"] = [raw["models"]]
    methods = raw.get("methods")
    if parts[0] == "methods" and len(parts) > 1 and isinstance(methods, list) \
            and all(isinstance(m, str) for m in methods):
        raw["methods"] = {m: {} for m in methods}
