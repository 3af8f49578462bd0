"""Load models and tokenizers safely: safetensors only, no remote code, offline-friendly.

The code that loads an 8B checkpoint from the hub is the code that loads a 200k-parameter tiny model
here; only `refs.resolve_model` knows the difference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Class names transformers saves for a plain `tokenizers` tokenizer (v4 and v5 spellings).
_GENERIC_FAST_TOKENIZERS = frozenset({"PreTrainedTokenizerFast", "TokenizersBackend"})


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


