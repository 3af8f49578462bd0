"""Prompt-Tuning: trainable virtual-token embeddings prepended to the input, randomly or text initialised."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from alignsweep.trainables.methods._base import METHODS, MethodGrid, positive_ints


@METHODS.register("prompt_tuning")
class PromptTuningGrid(MethodGrid):
    grid_fields: ClassVar[tuple[str, ...]] = ("num_virtual_tokens", "init")
    peft_type: ClassVar[str] = "PROMPT_TUNING"
    prompt_learning: ClassVar[bool] = True
    display_order: ClassVar[int] = 2
    peft_aliases: ClassVar[dict[str, str]] = {"prompt_tuning_init": "init", "prompt_tuning_init_text": "init_text"}
    num_virtual_tokens: list[int] = Field(default_factory=lambda: [8])
    init: list[Literal["random", "text"]] = Field(default_factory=lambda: ["random"])
    init_text: str = "Answer the request helpfully and safely."

    @field_validator("init", mode="before")
    @classmethod
    def _lower(cls, values: Any) -> Any:
        """peft spells the choices `RANDOM` / `TEXT` (`PromptTuningInit`)."""
        values = values if isinstance(values, list) else [values]
        return [v.lower() if isinstance(v, str) else v for v in values]

    @field_validator("num_virtual_tokens")
    @classmethod
    def _check(cls, values: list[int], info: Any) -> list[int]:
        return positive_ints(values, info.field_name)

    @classmethod
    def build(cls, hp: dict[str, Any], base_path: str) -> Any:
        from peft import PromptTuningConfig, PromptTuningInit, TaskType

        # TEXT init is applied by `attach_for_training` from the base's own tokenizer: peft would reload the
        # tokenizer with AutoTokenizer, which changes the ids of some saved tokenizers (qwen2).
        return PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=int(hp["num_virtual_tokens"]),
            prompt_tuning_init=PromptTuningInit.RANDOM,
        )

    @classmethod
    def attach_for_training(cls, base: Any, hp: dict[str, Any], *, base_path: str, tokenizer: Any) -> Any:
        model = super().attach_for_training(base, hp, base_path=base_path, tokenizer=tokenizer)
        if hp.get("init") == "text":
            _init_from_text(model, tokenizer, hp["init_text"], int(hp["num_virtual_tokens"]))
        return model


def _init_from_text(model: Any, tokenizer: Any, text: str, n: int) -> None:
    """peft's TEXT init (the text's token embeddings, repeated to `n`), with the base's own tokenizer."""
    import torch

    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = (ids * math.ceil(n / max(len(ids), 1)))[:n]
    embed = model.get_base_model().get_input_embeddings()
    with torch.no_grad():
        vectors = embed(torch.tensor(ids, device=embed.weight.device)).detach().clone()
        model.prompt_encoder["default"].embedding.weight.copy_(vectors)
