"""IA3: learned rescaling vectors on keys, values and the feed-forward output."""

from __future__ import annotations

from typing import Any, ClassVar

from alignsweep.trainables.methods._base import METHODS, MethodGrid


@METHODS.register("ia3")
class IA3Grid(MethodGrid):
    peft_type: ClassVar[str] = "IA3"
    display_order: ClassVar[int] = 1
    #: None → peft's per-architecture defaults (k_proj, v_proj, down_proj for Llama-like models).
    target_modules: list[str] | None = None
    feedforward_modules: list[str] | None = None

    @classmethod
    def build(cls, hp: dict[str, Any], base_path: str) -> Any:
        from peft import IA3Config, TaskType

        return IA3Config(
            task_type=TaskType.CAUSAL_LM,
            target_modules=hp.get("target_modules"),
            feedforward_modules=hp.get("feedforward_modules"),
        )
