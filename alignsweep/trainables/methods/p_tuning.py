"""P-Tuning: virtual tokens computed by a small prompt encoder (MLP or LSTM) and prepended to the input."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from alignsweep.trainables.methods._base import METHODS, MethodGrid, positive_ints


@METHODS.register("p_tuning")
class PTuningGrid(MethodGrid):
    grid_fields: ClassVar[tuple[str, ...]] = ("num_virtual_tokens", "encoder_hidden_size")
    peft_type: ClassVar[str] = "P_TUNING"
    prompt_learning: ClassVar[bool] = True
    display_order: ClassVar[int] = 3
    num_virtual_tokens: list[int] = Field(default_factory=lambda: [8])
    encoder_hidden_size: list[int] = Field(default_factory=lambda: [64])
    encoder_reparameterization_type: Literal["MLP", "LSTM"] = "MLP"

    @field_validator("num_virtual_tokens", "encoder_hidden_size")
    @classmethod
    def _check(cls, values: list[int], info: Any) -> list[int]:
        return positive_ints(values, info.field_name)

    @classmethod
    def build(cls, hp: dict[str, Any], base_path: str) -> Any:
        from peft import PromptEncoderConfig, TaskType

        return PromptEncoderConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=int(hp["num_virtual_tokens"]),
            encoder_hidden_size=int(hp["encoder_hidden_size"]),
            encoder_reparameterization_type=hp["encoder_reparameterization_type"],
        )
