"""Resolve and load base models safely: safetensors only, no remote code, offline-friendly.

`tiny:<family>` builds (once, cached) a real transformers architecture at tiny size, so the code that
loads an 8B checkpoint from the hub is the code that runs here on a 200k-parameter model.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignsweep.errors import InputError

TINY_PREFIX = "tiny:"
#: Class names transformers saves for a plain `tokenizers` tokenizer (v4 and v5 spellings).
_GENERIC_FAST_TOKENIZERS = frozenset({"PreTrainedTokenizerFast", "TokenizersBackend"})
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
            raise InputError(f"unknown tiny model {ref!r} (known: {', '.join('tiny:' + f for f in TINY_FAMILIES)})")
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


def load_tokenizer(path: str, *, trust_remote_code: bool = False) -> Any:
    """Load a tokenizer, honouring a saved `PreTrainedTokenizerFast` class.

    transformers 5 maps some model types (qwen2) to their own tokenizer class even when the directory
    saved a generic fast tokenizer, which changes the ids; the saved class wins here.
    """
    cfg_file = Path(path) / "tokenizer_config.json"
    if cfg_file.is_file():
        saved_class = json.loads(cfg_file.read_text()).get("tokenizer_class")
        if saved_class in _GENERIC_FAST_TOKENIZERS:
            from transformers import PreTrainedTokenizerFast

            return PreTrainedTokenizerFast.from_pretrained(path)
    from transformers import AutoTokenizer  # imports torch (its config classes do): only when needed

    return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)


def load_model(
    path: str,
    *,
    dtype: Any = None,
    trust_remote_code: bool = False,
    allow_unsafe_weights: bool = False,
) -> Any:
    """A causal LM in eval mode, from safetensors unless the user opted into pickled weights."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if not allow_unsafe_weights:
        kwargs["use_safetensors"] = True
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    model.eval()
    return model


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
