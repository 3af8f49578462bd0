"""PEFT methods: one module per method, each a registry entry holding everything special about it.

The sweep spec names methods by their registry key; a method's section of the spec is validated by its
grid, a trial's hyperparameters become a peft config by its `build`, and the rest of the code asks the
entry (see `_base.MethodGrid`) instead of naming methods. Adding a method (AdaLoRA, …) is one module
here, imported below; nothing else changes.
"""

from __future__ import annotations

import json
from pathlib import Path

from alignsweep.errors import InputError
from alignsweep.trainables.methods._base import METHODS, MethodGrid
from alignsweep.trainables.methods import dora, ia3, lora, p_tuning, prompt_tuning  # noqa: F401  (registers)

#: Registered method names in report order (tables, legends, colours).
METHOD_ORDER: tuple[str, ...] = tuple(sorted(METHODS, key=lambda name: METHODS.get(name).display_order))


def method_of_adapter(adapter_dir: str | None) -> str:
    """`base` without an adapter, else the registered method whose adapters look like `adapter_dir`'s.

    An adapter of no registered method is named by its lower-cased `peft_type` (`unknown` without one).
    """
    if adapter_dir is None:
        return "base"
    cfg_file = Path(adapter_dir) / "adapter_config.json"
    try:
        cfg = json.loads(cfg_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"adapter {adapter_dir!r}: unreadable adapter_config.json ({exc})") from None
    found = [name for name in METHODS if METHODS.get(name).matches(cfg)]
    if len(found) > 1:
        raise AssertionError(f"adapter {adapter_dir!r} matches several methods: {found}")
    return found[0] if found else str(cfg.get("peft_type", "")).lower() or "unknown"


__all__ = ["METHODS", "METHOD_ORDER", "MethodGrid", "method_of_adapter"]
