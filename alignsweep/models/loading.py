"""Load models and tokenizers safely: safetensors only, no remote code, offline-friendly.

The code that loads an 8B checkpoint from the hub is the code that loads a 200k-parameter tiny model
here; only `refs.resolve_model` knows the difference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignsweep.errors import InputError
from alignsweep.models.devices import choose_device

#: Class names transformers saves for a plain `tokenizers` tokenizer (v4 and v5 spellings).
_GENERIC_FAST_TOKENIZERS = frozenset({"PreTrainedTokenizerFast", "TokenizersBackend"})


def revision_kwargs(path: str, revision: str | None, *, ref: str | None = None) -> dict[str, Any]:
    """`from_pretrained`'s `revision=` (a hub branch, tag or commit) for the model or tokenizer at `path`.

    A local directory has no revisions: transformers would ignore one silently, so a model pinned to a
    commit that is actually read from a folder would look pinned and not be. That is bad input instead.
    """
    if revision is None:
        return {}
    if Path(path).expanduser().exists():
        raise InputError(f"model {ref or path!r}: revision {revision!r} pins a hub model's files; a local directory is "
                         "loaded as it is (drop revision, or name the hub id)")
    return {"revision": revision}


def load_tokenizer(path: str, *, trust_remote_code: bool = False, revision: str | None = None) -> Any:
    """Load a tokenizer, honouring a saved `PreTrainedTokenizerFast` class.

    transformers 5 maps some model types (qwen2) to their own tokenizer class even when the directory
    saved a generic fast tokenizer, which changes the ids; the saved class wins here.
    """
    pinned = revision_kwargs(path, revision)
    cfg_file = Path(path) / "tokenizer_config.json"
    if cfg_file.is_file():
        saved_class = json.loads(cfg_file.read_text()).get("tokenizer_class")
        if saved_class in _GENERIC_FAST_TOKENIZERS:
            from transformers import PreTrainedTokenizerFast

            return PreTrainedTokenizerFast.from_pretrained(path)
    from transformers import AutoTokenizer  # imports torch (its config classes do): only when needed

    return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, **pinned)


@dataclass(frozen=True)
class LoadOptions:
    """A model's loading settings, as its spec gives them: they travel with the model's name to every
    process that loads it (trainer, evaluator and judge actors, `audit`), so an 8B model declared
    `bfloat16` is never loaded as float32 on an evaluator, nor remote code run where it was not allowed."""

    dtype: str = "float32"  # float32 | bfloat16 | float16 | auto (the checkpoint's own)
    trust_remote_code: bool = False
    allow_unsafe_weights: bool = False
    revision: str | None = None  # a hub model's branch, tag or commit (None: the default branch)


def load_model(
    path: str,
    *,
    dtype: Any = None,
    trust_remote_code: bool = False,
    allow_unsafe_weights: bool = False,
    device: str | None = None,
    revision: str | None = None,
) -> Any:
    """A causal LM in eval mode, from safetensors unless the user opted into pickled weights, on `device`
    (`models.devices.choose_device()` when None)."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, **revision_kwargs(path, revision)}
    if dtype is not None:
        kwargs["dtype"] = torch_dtype(dtype)
    if not allow_unsafe_weights:
        kwargs["use_safetensors"] = True
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    model.to(device or choose_device())
    model.eval()
    return model


def load_with(path: str, options: LoadOptions, *, device: str | None = None) -> Any:
    """`load_model` with a model's spec settings."""
    return load_model(path, dtype=options.dtype, trust_remote_code=options.trust_remote_code,
                      allow_unsafe_weights=options.allow_unsafe_weights, device=device, revision=options.revision)


def torch_dtype(dtype: Any) -> Any:
    """A torch dtype from its name (`bfloat16`), or `auto`; torch dtypes pass through."""
    if not isinstance(dtype, str) or dtype == "auto":
        return dtype
    import torch

    return getattr(torch, dtype)
