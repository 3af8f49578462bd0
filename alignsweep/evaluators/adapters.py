"""Attach a trial's PEFT adapter to a loaded base model for one evaluation, then take it off again.

Why: an evaluator actor loads each base model once and serves every trial's checkpoints. That is
only sound if detaching returns the base to exactly its loaded state; `attached` guarantees it
(tests compare logits bit for bit with a fresh load, for every registered PEFT method).

Nothing here names a method: the adapter's own peft config says whether peft injected layers into the
base (LoRA, IA3, DoRA: `unload()` takes them out) or only wrapped it (prompt learning: unwrap). The
method registry (`trainables.methods`, above this layer) names adapters (`method_of_adapter`).

Two ways to attach (`method=`):
- `reference`: `PeftModel.from_pretrained` on entry, `unload()` on exit: every checkpoint rebuilds
  and re-injects the adapter modules.
- `hot_swap` (default): consecutive checkpoints of one trial (and every trial of one method) share
  an adapter config, so the injected modules are kept between requests and only their weights are
  swapped in (peft's own `load_peft_weights` + `set_peft_model_state_dict`, what `from_pretrained`
  does after building). Between requests the adapter layers are disabled and peft's attributes
  are taken off the base, so the base computes exactly its loaded function; a checkpoint with
  another config first takes the old adapter off completely.
"""

from __future__ import annotations

import json
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from alignsweep.errors import InputError

ATTACH_METHODS = ("hot_swap", "reference")
# adapter_config.json fields that say where an adapter came from, not what modules it builds.
_PROVENANCE_FIELDS = ("base_model_name_or_path", "revision", "peft_version", "auto_mapping", "inference_mode")
# Attributes peft sets on a base model it injects into; hidden while a kept adapter is idle.
_PEFT_BASE_ATTRS = ("peft_config", "_hf_peft_config_loaded")


@contextmanager
def attached(base: Any, adapter_dir: str | None, *, method: str = "hot_swap") -> Iterator[Any]:
    """The base with `adapter_dir`'s adapter applied (or the base itself); detached on exit, always."""
    if method not in ATTACH_METHODS:
        raise ValueError(f"unknown attach method {method!r} (known: {', '.join(ATTACH_METHODS)})")
    if adapter_dir is None:
        yield base
        return
    from peft import PeftModel

    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise InputError(f"adapter {adapter_dir!r}: no adapter_config.json there")
    if not (Path(adapter_dir) / "adapter_model.safetensors").is_file():  # peft would fall back to a pickle
        raise InputError(f"adapter {adapter_dir!r}: no adapter_model.safetensors (pickled adapters are refused)")
    if method == "hot_swap":
        with _hot_swapped(base, adapter_dir) as model:
            yield model
        return
    release(base)  # a kept hot-swap adapter would otherwise stack under this one
    model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=False)
    model.eval()
    try:
        yield model
    finally:
        _detach(model)


@dataclass
class _Kept:
    """A PeftModel kept on a base between requests, with what was hidden from the base meanwhile.

    `targets`: saved-adapter key → the parameter tensor it lands in (LoRA / IA3), so a swap is one
    `copy_` per tensor; empty for prompt-learning adapters, whose saved embeddings peft computes.
    `layers`: the injected tuner layers, toggled directly instead of walking every module.
    """

    signature: str
    model: Any
    targets: dict[str, Any]
    layers: list[Any]
    hidden: dict[str, Any]


_KEPT: "weakref.WeakKeyDictionary[Any, _Kept]" = weakref.WeakKeyDictionary()


def adapter_signature(adapter_dir: str) -> str:
    """Everything in adapter_config.json that decides which modules and shapes the adapter builds."""
    cfg = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    return json.dumps({k: v for k, v in cfg.items() if k not in _PROVENANCE_FIELDS}, sort_keys=True, default=str)


@contextmanager
def _hot_swapped(base: Any, adapter_dir: str) -> Iterator[Any]:
    signature = adapter_signature(adapter_dir)
    kept = _KEPT.get(base)
    if kept is not None and kept.signature != signature:
        release(base)
        kept = None
    if kept is None:
        kept = _keep(base, adapter_dir, signature)
    else:
        base.__dict__.update(kept.hidden)
        kept.hidden = {}
        _load_weights(kept, adapter_dir)
        _set_layers(kept, enabled=True)
    try:
        yield kept.model
    finally:
        _idle(base, kept)


def _keep(base: Any, adapter_dir: str, signature: str) -> _Kept:
    from peft import PeftModel
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils import get_peft_model_state_dict

    model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=False)
    model.eval()
    layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    targets: dict[str, Any] = {}
    if not _is_prompt_learning(model):
        storage = {p.data_ptr(): p for p in model.parameters()}
        saved = get_peft_model_state_dict(model)
        found = {k: storage.get(v.data_ptr()) for k, v in saved.items()}
        if all(p is not None and p.shape == saved[k].shape for k, p in found.items()):
            targets = found
    kept = _Kept(signature, model, targets, layers, {})
    _KEPT[base] = kept
    return kept


def _load_weights(kept: _Kept, adapter_dir: str) -> None:
    """The new checkpoint's tensors into the kept modules (same signature → same keys and shapes)."""
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(Path(adapter_dir) / "adapter_model.safetensors"), device=_device_of(kept.model))
    if kept.targets and weights.keys() == kept.targets.keys():
        with torch.no_grad():
            for key, value in weights.items():
                kept.targets[key].copy_(value)
        return
    from peft.utils import set_peft_model_state_dict

    # peft loads prompt-learning weights outside the state-dict result (it lists them as unexpected),
    # so that result is no evidence of a mismatch; the signature check already made shapes equal.
    set_peft_model_state_dict(kept.model, weights)


def _set_layers(kept: _Kept, *, enabled: bool) -> None:
    for layer in kept.layers:
        layer.enable_adapters(enabled)


def _idle(base: Any, kept: _Kept) -> None:
    """Keep the adapter's modules but make the base compute exactly its loaded function."""
    _set_layers(kept, enabled=False)
    kept.hidden = {a: base.__dict__.pop(a) for a in _PEFT_BASE_ATTRS if a in base.__dict__}


def release(base: Any) -> None:
    """Take a kept hot-swap adapter off `base` completely (a no-op when none is kept)."""
    kept = _KEPT.pop(base, None)
    if kept is None:
        return
    base.__dict__.update(kept.hidden)
    _set_layers(kept, enabled=True)
    _detach(kept.model)


def _is_prompt_learning(model: Any) -> bool:
    return bool(model.peft_config[model.active_adapter].is_prompt_learning)


def _device_of(model: Any) -> str:
    return str(next(model.parameters()).device)


def _detach(model: Any) -> None:
    """Remove every trace of the adapter from the base model object.

    Injected adapters (LoRA, IA3, DoRA) put layers into the base modules: `unload()` swaps the original
    modules back without merging. Prompt-learning adapters leave the base modules alone and only wrap them.
    """
    if _is_prompt_learning(model):
        base = model.base_model
    else:
        base = model.unload()
    for attr in _PEFT_BASE_ATTRS:
        if attr in base.__dict__:
            delattr(base, attr)
