"""What a spec's model string names: a hub id, a local path, or `tiny:<family>` (built once, cached).

Resolution is apart from loading so that the tiny-model builder, which loads what it builds, never
imports the resolver that calls it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from alignsweep.errors import InputError
from alignsweep.suggest import unknown_name

TINY_PREFIX = "tiny:"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass(frozen=True)
class ModelRef:
    """What a spec names (`ref`) and where the weights are (`path`: a local directory or a hub id)."""

    ref: str
    path: str
    family: str
    is_local: bool


def resolve_model(ref: str) -> ModelRef:
    """Turn a spec's model string into a loadable location; builds tiny models on first use."""
    if ref.startswith(TINY_PREFIX):
        from alignsweep.models.tiny import TINY_FAMILIES, ensure_tiny

        family = ref[len(TINY_PREFIX):]
        if family not in TINY_FAMILIES:
            raise InputError(unknown_name("tiny model", ref, ["tiny:" + f for f in TINY_FAMILIES]))
        return ModelRef(ref=ref, path=str(ensure_tiny(family)), family=family, is_local=True)
    path = Path(ref).expanduser()
    if path.exists() or ref.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise InputError(f"model path {ref!r}: no config.json there (not a transformers model directory)")
        return ModelRef(ref=ref, path=str(path.resolve()), family=model_family(str(path)), is_local=True)
    if _HUB_ID.match(ref):
        return ModelRef(ref=ref, path=ref, family=_family_from_id(ref), is_local=False)
    raise InputError(f"model {ref!r} is neither a local path, a hub id (org/name) nor tiny:<family>")


def model_family(path: str) -> str:
    """The architecture family (`llama`, `qwen2`, …) from a local model's config."""
    try:
        cfg = json.loads((Path(path) / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"model path {path!r}: unreadable config.json ({exc})") from None
    return str(cfg.get("model_type", "unknown"))


def _family_from_id(hub_id: str) -> str:
    name = hub_id.split("/")[-1].lower()
    for family in ("llama", "qwen2", "qwen", "mistral", "gemma", "phi"):
        if family in name:
            return "qwen2" if family == "qwen" else family
    return "unknown"


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
