"""Spec values only the base model can judge, checked against each local base's files before Ray starts.

Why here and not in the trial: a LoRA `target_modules` the architecture lacks, or virtual tokens that push
a sequence past the model's positions, otherwise
fail minutes into a sweep as one trial traceback per grid point. Everything is read from the
checkpoint's `config.json` and its safetensors headers (names and shapes of every weight), so no torch
import and no weights are loaded; the same module table checks a saved adapter against the base it is
scored on (`adapter_fits`). Hub ids are not local and are checked where they load.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from alignsweep.errors import InputError
from alignsweep.spec.weights import read_header

#: config.json keys that hold a model's number of positions, in transformers' spellings.
_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")
_ADAPTER_PARTS = re.compile(r"^(?:base_model\.model\.)?(.+?)\.(lora_A|lora_B|lora_magnitude_vector|ia3_l)(?:\.|$)")


@functools.cache
def module_table(model_dir: str) -> dict[str, tuple[int, ...]]:
    """Module name → its weight's shape, from the safetensors headers (`model.layers.0.self_attn.q_proj`: (64, 64))."""
    table: dict[str, tuple[int, ...]] = {}
    for file in sorted(Path(model_dir).glob("*.safetensors")):
        for name, entry in _header(file).items():
            if name != "__metadata__" and name.endswith(".weight") and isinstance(entry, dict):
                table[name.removesuffix(".weight")] = tuple(entry.get("shape") or ())
    embed = next((shape for name, shape in table.items() if name.endswith("embed_tokens")), None)
    if embed is not None and not any(name.endswith("lm_head") for name in table):
        table["lm_head"] = embed  # tied word embeddings: the checkpoint stores no lm_head, the model has one
    return table


def _header(file: Path) -> dict[str, Any]:
    header = read_header(file)[1]
    return header if isinstance(header, dict) else {}


def _matches(module: str, target: str, as_regex: bool) -> bool:
    if as_regex:
        return re.fullmatch(target, module) is not None
    return module == target or module.endswith("." + target)


def _leaf_names(table: dict[str, tuple[int, ...]]) -> list[str]:
    return sorted({name.rsplit(".", 1)[-1] for name, shape in table.items() if len(shape) == 2})


def check_targets(targets: Any, table: dict[str, tuple[int, ...]], what: str) -> None:
    """Every name in `targets` (peft's list of module-name suffixes, or one regex) names a linear layer."""
    if targets is None or targets == "all-linear" or not table:
        return
    if not isinstance(targets, (str, list)):
        raise InputError(f"{what}: must be a list of module names or one regular expression, not {targets!r:.40}")
    as_regex = isinstance(targets, str)
    for target in [targets] if as_regex else list(targets):
        try:
            hits = [shape for name, shape in table.items() if _matches(name, str(target), as_regex)]
        except re.error as exc:
            raise InputError(f"{what}: {target!r} is not a valid regular expression ({exc})") from None
        if not hits:
            raise InputError(f"{what}: the base has no module {target!r} (its modules with a weight matrix: "
                             f"{', '.join(_leaf_names(table)) or 'none'})")
        if not any(len(shape) == 2 for shape in hits):
            raise InputError(f"{what}: module {target!r} of the base is not a linear layer (weight shape {hits[0]})")


def positions(config: dict[str, Any]) -> int | None:
    """The number of positions a model's config allows, when it says."""
    for key in _POSITION_KEYS:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def check_sweep_fits(spec: Any, base_dir: str, config: dict[str, Any], ref: str) -> None:
    """The spec's methods and training lengths against one local base: its modules and its positions."""
    table = module_table(base_dir)
    limit = positions(config)
    length = spec.training.max_seq_length
    for name, grid in spec.method_grids().items():
        for field in ("target_modules", "feedforward_modules"):
            check_targets(getattr(grid, field, None), table, f"methods.{name}.{field} on model {ref!r}")
        virtual = max(getattr(grid, "num_virtual_tokens", None) or [0])
        if limit is not None and length + virtual > limit:
            extra = f" + {virtual} virtual tokens" if virtual else ""
            raise InputError(f"training.max_seq_length: {length}{extra} is past the {limit} positions of model {ref!r} "
                             "(max_position_embeddings in its config.json)")


def adapter_fits(adapter_dir: Path, config: dict[str, Any], base_dir: str, base_ref: str) -> None:
    """A saved adapter's tensors against the base's modules: every one on a module the base has, in its shape."""
    table = module_table(base_dir)
    what = f"adapter {str(adapter_dir)!r}"
    check_targets(config.get("target_modules"), table, f"{what}: adapter_config.json target_modules on {base_ref!r}")
    hidden = next((s[1] for n, s in table.items() if n.endswith("embed_tokens") and len(s) == 2), None)
    for file in sorted(adapter_dir.glob("adapter_model*.safetensors")):
        for key, entry in _header(file).items():
            shape = tuple(entry.get("shape") or ()) if isinstance(entry, dict) else ()
            if key == "prompt_embeddings" and hidden is not None and shape and shape[-1] != hidden:
                raise InputError(f"{what} was made for another base shape: prompt embeddings of width {shape[-1]}, "
                                 f"base {base_ref!r} has hidden size {hidden}")
            virtual = _int(config.get("num_virtual_tokens")) * max(1, _int(config.get("num_transformer_submodules")))
            if key == "prompt_embeddings" and virtual and shape and shape[0] != virtual:
                raise InputError(f"{what}: adapter_config.json says num_virtual_tokens {virtual}, but its prompt "
                                 f"embeddings hold {shape[0]}")
            parts = _ADAPTER_PARTS.match(key)
            if not parts or not shape:
                continue
            module, kind = parts.groups()
            base_shape = table.get(module)
            if base_shape is None:
                raise InputError(f"{what}: tensor {key!r} is on module {module!r}, which base {base_ref!r} lacks")
            if len(base_shape) != 2:
                continue
            out_f, in_f = base_shape
            fits = {"lora_A": shape[-1] == in_f, "lora_B": shape[0] == out_f,
                    "lora_magnitude_vector": shape[0] == out_f, "ia3_l": max(shape) in (in_f, out_f)}[kind]
            rank = _int(config.get("r"))
            if kind == "lora_A" and rank and not config.get("rank_pattern") and shape[0] != rank:
                raise InputError(f"{what}: adapter_config.json says r {rank}, but {key} has rank {shape[0]}")
            if not fits:
                raise InputError(f"{what} was made for another base shape: {key} is {list(shape)}, "
                                 f"base {base_ref!r} has {module} of {in_f} → {out_f}")


def wrong_typed_field(config_class: type, values: dict[str, Any]) -> str | None:
    """The first value of a saved peft config whose type its dataclass field does not allow (`r: "x"`), described."""
    import typing

    try:
        hints = typing.get_type_hints(config_class)
    except Exception:  # noqa: BLE001 — an annotation this Python cannot resolve: nothing to compare with
        return None
    simple = {int: (int, float), float: (int, float), bool: (bool,), str: (str,)}  # peft writes lora_alpha 8.0
    for key, value in values.items():
        hint = hints.get(key)
        args = typing.get_args(hint)
        allowed = [a for a in (args if args else (hint,)) if a is not type(None)]
        if value is None and (type(None) in args or not args):
            continue
        if not allowed or not all(a in simple for a in allowed):
            continue
        ok = any(isinstance(value, simple[a]) and (a is bool or not isinstance(value, bool)) for a in allowed)
        if not ok:
            kinds = sorted({"a number" if a in (int, float) else a.__name__ for a in allowed})
            return f"{key} must be {' or '.join(kinds)} (got {value!r:.40})"
    return None


def _int(value: Any) -> int:
    """A config's count, or 0 where it is not a plain positive integer (the type check reports those)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
