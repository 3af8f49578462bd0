"""Attach a trial's PEFT adapter to a loaded base model for one evaluation, then take it off again.

Why: an evaluator actor loads each base model once and serves every trial's checkpoints. That is
only sound if detaching returns the base to exactly its loaded state; `attached` guarantees it
(tests compare logits bit for bit with a fresh load, for LoRA, IA3, Prompt-Tuning and P-Tuning).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from alignsweep.errors import InputError

# peft's `peft_type` → alignsweep's method name (the names of the trainables' method registry).
_METHOD_NAMES = {"LORA": "lora", "IA3": "ia3", "PROMPT_TUNING": "prompt_tuning", "P_TUNING": "p_tuning"}


def adapter_method(adapter_dir: str | None) -> str:
    """`base` without an adapter, else the method named by the adapter's `adapter_config.json`."""
    if adapter_dir is None:
        return "base"
    cfg_file = Path(adapter_dir) / "adapter_config.json"
    try:
        cfg = json.loads(cfg_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"adapter {adapter_dir!r}: unreadable adapter_config.json ({exc})") from None
    peft_type = str(cfg.get("peft_type", "")).upper()
    if peft_type == "LORA" and cfg.get("use_dora"):
        return "dora"
    return _METHOD_NAMES.get(peft_type, peft_type.lower() or "unknown")


@contextmanager
def attached(base: Any, adapter_dir: str | None) -> Iterator[Any]:
    """The base with `adapter_dir`'s adapter applied (or the base itself); detached on exit, always."""
    if adapter_dir is None:
        yield base
        return
    from peft import PeftModel

    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise InputError(f"adapter {adapter_dir!r}: no adapter_config.json there")
    if not (Path(adapter_dir) / "adapter_model.safetensors").is_file():  # peft would fall back to a pickle
        raise InputError(f"adapter {adapter_dir!r}: no adapter_model.safetensors (pickled adapters are refused)")
    model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=False)
    model.eval()
    try:
        yield model
    finally:
        _detach(model)


def _detach(model: Any) -> None:
    """Remove every trace of the adapter from the base model object.

    LoRA / IA3 inject layers into the base modules: `unload()` swaps the original modules back
    without merging. Prompt-Tuning / P-Tuning leave the base modules alone and only wrap them.
    """
    if model.peft_config[model.active_adapter].is_prompt_learning:
        base = model.base_model
    else:
        base = model.unload()
    for attr in ("peft_config", "_hf_peft_config_loaded"):
        if attr in base.__dict__:
            delattr(base, attr)
