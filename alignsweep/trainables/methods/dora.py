"""DoRA: LoRA with each target weight split into magnitude and direction (peft's `LoraConfig(use_dora=True)`).

Everything but the flag is LoRA's: the grid, the peft config, how adapters attach; `LoraGrid.matches`
tells the two apart by `use_dora` in `adapter_config.json`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from alignsweep.trainables.methods._base import METHODS
from alignsweep.trainables.methods.lora import LoraGrid


@METHODS.register("dora")
class DoraGrid(LoraGrid):
    display_order: ClassVar[int] = 4
    use_dora: Literal[True] = True
