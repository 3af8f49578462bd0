"""PEFT methods: each one is a hyperparameter grid (validated) plus a peft config builder.

The sweep spec names methods by their registry key; a method's section of the spec is validated by its
own grid model, and a trial's concrete hyperparameters are turned into a peft config by its builder.
Adding a method (DoRA, AdaLoRA, …) is one `@METHODS.register` entry here and touches nothing else.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alignsweep.registry import Registry

GridValue = Any


class MethodGrid(BaseModel):
    """A method's hyperparameter grid: every list field is a sweep dimension (scalars become [x])."""

    model_config = ConfigDict(extra="forbid")
    #: Hyperparameter fields that are grids (swept); the others are fixed settings.
    grid_fields: ClassVar[tuple[str, ...]] = ()
    #: Per-method learning rates; when absent the training section's rates apply.
    learning_rates: list[float] | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _scalar_to_list(cls, value: Any, info: Any) -> Any:
        annotation = cls.model_fields[info.field_name].annotation
        wants_list = list in (get_origin(annotation), *(get_origin(a) for a in get_args(annotation)))
        if wants_list and value is not None and not isinstance(value, list):
            return [value]
        return value

    def fixed(self) -> dict[str, Any]:
        """Settings that every trial of this method shares."""
        skip = set(self.grid_fields) | {"learning_rates"}
        return {k: v for k, v in self.model_dump().items() if k not in skip}

    def grid(self) -> dict[str, list[Any]]:
        return {name: getattr(self, name) for name in self.grid_fields}

    @classmethod
    def build(cls, hp: dict[str, Any], base_path: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


def _non_empty(values: list[Any], name: str) -> list[Any]:
    if not values:
        raise ValueError(f"{name} must list at least one value")
    return values


def _positive_ints(values: list[int], name: str) -> list[int]:
    """A grid of sizes (ranks, token counts, widths): at least one value, each ≥ 1."""
    _non_empty(values, name)
    if any(v < 1 for v in values):
        raise ValueError(f"{name} must be ≥ 1")
    return values


class LoraGrid(MethodGrid):
    grid_fields: ClassVar[tuple[str, ...]] = ("r", "alpha", "dropout")
    r: list[int] = Field(default_factory=lambda: [8])
    alpha: list[float] = Field(default_factory=lambda: [16.0])
    dropout: list[float] = Field(default_factory=lambda: [0.0])
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    use_dora: bool = False

    @field_validator("r", "alpha", "dropout", "target_modules")
    @classmethod
    def _check(cls, values: list[Any], info: Any) -> list[Any]:
        if info.field_name == "r":
            return _positive_ints(values, "r")
        _non_empty(values, info.field_name)
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


class IA3Grid(MethodGrid):
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


class PromptTuningGrid(MethodGrid):
    grid_fields: ClassVar[tuple[str, ...]] = ("num_virtual_tokens", "init")
    num_virtual_tokens: list[int] = Field(default_factory=lambda: [8])
    init: list[Literal["random", "text"]] = Field(default_factory=lambda: ["random"])
    init_text: str = "Answer the request helpfully and safely."

    @field_validator("num_virtual_tokens")
    @classmethod
    def _check(cls, values: list[int], info: Any) -> list[int]:
        return _positive_ints(values, info.field_name)

    @classmethod
    def build(cls, hp: dict[str, Any], base_path: str) -> Any:
        from peft import PromptTuningConfig, PromptTuningInit, TaskType

        # TEXT init is applied by the trial from the base's own tokenizer (see `PeftTrainer._init_prompt_from_text`): peft would
        # reload the tokenizer with AutoTokenizer, which changes the ids of some saved tokenizers.
        return PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=int(hp["num_virtual_tokens"]),
            prompt_tuning_init=PromptTuningInit.RANDOM,
        )


class PTuningGrid(MethodGrid):
    grid_fields: ClassVar[tuple[str, ...]] = ("num_virtual_tokens", "encoder_hidden_size")
    num_virtual_tokens: list[int] = Field(default_factory=lambda: [8])
    encoder_hidden_size: list[int] = Field(default_factory=lambda: [64])
    encoder_reparameterization_type: Literal["MLP", "LSTM"] = "MLP"

    @field_validator("num_virtual_tokens", "encoder_hidden_size")
    @classmethod
    def _check(cls, values: list[int], info: Any) -> list[int]:
        return _positive_ints(values, info.field_name)

    @classmethod
    def build(cls, hp: dict[str, Any], base_path: str) -> Any:
        from peft import PromptEncoderConfig, TaskType

        return PromptEncoderConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=int(hp["num_virtual_tokens"]),
            encoder_hidden_size=int(hp["encoder_hidden_size"]),
            encoder_reparameterization_type=hp["encoder_reparameterization_type"],
        )


class DoraGrid(LoraGrid):
    use_dora: bool = True


METHODS: Registry[type[MethodGrid]] = Registry("method")
METHODS.register("lora")(LoraGrid)
METHODS.register("ia3")(IA3Grid)
METHODS.register("prompt_tuning")(PromptTuningGrid)
METHODS.register("p_tuning")(PTuningGrid)
METHODS.register("dora")(DoraGrid)

#: Methods that prepend virtual tokens (their logits carry extra leading positions).
PROMPT_LEARNING = frozenset({"prompt_tuning", "p_tuning"})
