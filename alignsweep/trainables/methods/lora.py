"""LoRA: low-rank updates injected into the target projections (`use_dora` turns it into DoRA, see `dora`)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from alignsweep.trainables.methods._base import METHODS, MethodGrid, non_empty, positive_ints


@METHODS.register("lora")
class LoraGrid(MethodGrid):
    grid_fields: ClassVar[tuple[str, ...]] = ("r", "alpha", "dropout")
    peft_type: ClassVar[str] = "LORA"
    display_order: ClassVar[int] = 0
    peft_aliases: ClassVar[dict[str, str]] = {"lora_alpha": "alpha", "lora_dropout": "dropout"}
    r: list[int] = Field(default_factory=lambda: [8])
    alpha: list[float] = Field(default_factory=lambda: [16.0])
    dropout: list[float] = Field(default_factory=lambda: [0.0])
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    use_dora: bool = False

    @field_validator("r", "alpha", "dropout", "target_modules")
    @classmethod
    def _check(cls, values: list[Any], info: Any) -> list[Any]:
        if info.field_name == "r":
            return positive_ints(values, "r")
        non_empty(values, info.field_name)
        if info.field_name == "dropout" and any(not 0 <= v < 1 for v in values):
            raise ValueError("dropout must be in [0, 1)")
        return values

    @classmethod
    def build(cls, hp: dict[str, Any], base_path: str) -> Any:
        from peft import LoraConfig, TaskType

        return LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=int(hp["r"]),
            lora_alpha=float(hp["alpha"]),
            lora_dropout=float(hp["dropout"]),
            target_modules=list(hp["target_modules"]),
            use_dora=bool(hp.get("use_dora", False)),
        )

    @classmethod
    def matches(cls, adapter_config: dict[str, Any]) -> bool:
        """A LoRA adapter whose `use_dora` is this grid's default (so LoRA and DoRA tell each other apart)."""
        dora = bool(adapter_config.get("use_dora"))
        return super().matches(adapter_config) and dora == cls.model_fields["use_dora"].default
