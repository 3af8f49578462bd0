"""A PEFT adapter as a value: its config and weights, read once from the saved files, plus their digest.

Why: a trial and the evaluator that scores its checkpoint usually run on different hosts of a cluster,
so a path on the trial's node means nothing to the evaluator. The trial reads the adapter it just saved
into an `AdapterPayload` (adapters are small: kilobytes to tens of megabytes) and hands the payload
itself to the evaluator through Ray's object store; the evaluator attaches it from memory
(`evaluators.adapters.attached`) and never opens a path on the trial's node.

The digest is taken once, when the payload is built: it names the adapter's content (the evaluator's
result-cache key and the actor routing key, `evaluate.adapter_key`) without reading any file again.
An unpickled payload keeps the digest it was sent with.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignsweep.errors import InputError

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"


def _digest(config: bytes, weights: bytes) -> str:
    h = hashlib.sha256()
    for part in (config, weights):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


@dataclass(frozen=True)
class AdapterPayload:
    """`config`: adapter_config.json's bytes as saved; `weights`: adapter_model.safetensors' bytes as saved;
    `digest`: sha256 of both (computed on construction); `source`: where it was read, for messages only."""

    config: bytes = field(repr=False)
    weights: bytes = field(repr=False)
    source: str = ""
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.config, bytes) or not isinstance(self.weights, bytes):
            raise TypeError("an adapter payload holds the saved files' bytes")
        object.__setattr__(self, "digest", _digest(self.config, self.weights))

    @classmethod
    def read(cls, adapter_dir: str | Path) -> "AdapterPayload":
        """The adapter saved in `adapter_dir` (peft's `save_pretrained` layout, safetensors weights only)."""
        folder = Path(adapter_dir)
        if not (folder / CONFIG_FILE).is_file():
            raise InputError(f"adapter {str(adapter_dir)!r}: no {CONFIG_FILE} there")
        if not (folder / WEIGHTS_FILE).is_file():  # peft would fall back to a pickle
            raise InputError(f"adapter {str(adapter_dir)!r}: no {WEIGHTS_FILE} (pickled adapters are refused)")
        return cls((folder / CONFIG_FILE).read_bytes(), (folder / WEIGHTS_FILE).read_bytes(), source=str(adapter_dir))

    def config_dict(self) -> dict[str, Any]:
        try:
            cfg = json.loads(self.config)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"adapter {self.name}: unreadable {CONFIG_FILE} ({exc})") from None
        if not isinstance(cfg, dict):
            raise InputError(f"adapter {self.name}: {CONFIG_FILE} is not a JSON object")
        return cfg

    def tensors(self, device: Any = None) -> dict[str, Any]:
        """The weights as tensors (on `device`, else the CPU), parsed from the bytes held here."""
        from safetensors.torch import load

        weights = load(self.weights)
        return weights if device is None else {k: v.to(device) for k, v in weights.items()}

    def write(self, directory: str | Path) -> Path:
        """The two files, byte for byte, into `directory` (the caller's own local scratch space)."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).write_bytes(self.config)
        (folder / WEIGHTS_FILE).write_bytes(self.weights)
        return folder

    @property
    def name(self) -> str:
        """How messages name this adapter: where it was read, and its digest."""
        short = self.digest[:12]
        return f"{self.source!r} ({short})" if self.source else short

    def __repr__(self) -> str:
        return (f"AdapterPayload(source={self.source!r}, digest={self.digest[:12]}…, "
                f"config={len(self.config)} B, weights={len(self.weights)} B)")
