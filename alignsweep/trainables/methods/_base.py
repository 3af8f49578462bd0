"""What every PEFT method entry is: a validated hyperparameter grid plus the facts and hooks of its method.

One registry entry (a `MethodGrid` subclass in its own module of this package) holds everything special
about a method, so no other module names methods:
- the sweep-spec grid (fields, validation) and `build`: a trial's hyperparameters → a peft config;
- `peft_type` and `matches`: which saved adapters it recognises (`method_of_adapter`);
- `prompt_learning` and `virtual_positions`: whether it prepends virtual tokens, and so how many leading
  positions its logits carry;
- `attach_for_training`: the base wrapped with a fresh adapter for a trial (initialisation included, e.g.
  Prompt-Tuning's text init). Resuming uses the same hook and then copies the checkpoint's trainable
  tensors in (`PeftTrainer.restore`): peft refuses to load prompt-learning adapters trainable, and P-Tuning
  saves only its computed prompts, not its encoder;
- `display_order`: where reports list it;
- `peft_aliases`: peft's own names for grid fields (`lora_alpha` → `alpha`), accepted in a spec so a
  config copied from peft code works; the grid's name is what trial records and reports use.

Inference sits below this registry (trainables > evaluators > inference): evaluators attach a saved adapter
with `PeftModel.from_pretrained` and detach it with `unload()` (injected layers) or by unwrapping
(prompt learning), and inference slices `num_virtual_tokens` positions off the logits. Both read that
from the adapter's own peft config (`is_prompt_learning`); tests check for every entry that its
`prompt_learning` / `virtual_positions` agree with the config its `build` makes and with the logits.
"""

from __future__ import annotations

from typing import Any, ClassVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from alignsweep.options import plain_numbers
from alignsweep.registry import Registry


class MethodGrid(BaseModel):
    """A method's hyperparameter grid: every list field is a sweep dimension (scalars become [x])."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    #: Hyperparameter fields that are grids (swept); the others are fixed settings.
    grid_fields: ClassVar[tuple[str, ...]] = ()
    #: peft's `peft_type` of the adapters this method saves (`adapter_config.json`).
    peft_type: ClassVar[str] = ""
    #: Prepends virtual tokens (Prompt-Tuning, P-Tuning): logits carry that many extra leading positions.
    prompt_learning: ClassVar[bool] = False
    #: Position in reports (tables, legends, colours); unique across methods.
    display_order: ClassVar[int] = 0
    #: peft's field name → this grid's name for it, where they differ (`{"lora_alpha": "alpha"}`).
    peft_aliases: ClassVar[dict[str, str]] = {}
    #: Per-method learning rates; when absent the training section's rates apply.
    learning_rates: list[float] | None = None

    @model_validator(mode="before")
    @classmethod
    def _peft_names(cls, data: Any) -> Any:
        """peft's spelling of a field becomes the grid's; both spellings at once is ambiguous."""
        if not isinstance(data, dict) or not cls.peft_aliases:
            return data
        out = dict(data)
        for alias, name in cls.peft_aliases.items():
            if alias in out:
                if name in out:
                    raise ValueError(f"give {name} or {alias} (peft's name for it), not both")
                out[name] = out.pop(alias)
        return out

    @field_validator("*", mode="before")
    @classmethod
    def _scalar_to_list(cls, value: Any, info: Any) -> Any:
        annotation = cls.model_fields[info.field_name].annotation
        wants_list = list in (get_origin(annotation), *(get_origin(a) for a in get_args(annotation)))
        if wants_list and value is not None and not isinstance(value, list):
            value = [value]
        return plain_numbers(cls, value, info.field_name)

    @field_validator("learning_rates")
    @classmethod
    def _positive_rates(cls, values: list[float] | None) -> list[float] | None:
        """Like `training.learning_rates`: a grid of at least one value, each > 0."""
        if values is not None and (not values or any(v <= 0 for v in values)):
            raise ValueError(f"list at least one value, every value > 0 (got {values})")
        return values

    def fixed(self) -> dict[str, Any]:
        """Settings that every trial of this method shares."""
        skip = set(self.grid_fields) | {"learning_rates"}
        return {k: v for k, v in self.model_dump().items() if k not in skip}

    def grid(self) -> dict[str, list[Any]]:
        return {name: getattr(self, name) for name in self.grid_fields}

    @classmethod
    def build(cls, hp: dict[str, Any], base_path: str) -> Any:  # pragma: no cover - abstract
        """The peft config of one trial's concrete hyperparameters."""
        raise NotImplementedError

    @classmethod
    def attach_for_training(cls, base: Any, hp: dict[str, Any], *, base_path: str, tokenizer: Any) -> Any:
        """`base` wrapped with a freshly initialised, trainable adapter (also the first step of a resume)."""
        from peft import get_peft_model

        return get_peft_model(base, cls.build(hp, base_path))

    @classmethod
    def virtual_positions(cls, hp: dict[str, Any]) -> int:
        """Leading logits positions that belong to virtual tokens, not to the input (0 unless prompt learning)."""
        return int(hp["num_virtual_tokens"]) if cls.prompt_learning else 0

    @classmethod
    def matches(cls, adapter_config: dict[str, Any]) -> bool:
        """Whether a saved `adapter_config.json` is an adapter of this method."""
        return str(adapter_config.get("peft_type", "")).upper() == cls.peft_type


def non_empty(values: list[Any], name: str) -> list[Any]:
    if not values:
        raise ValueError(f"{name} must list at least one value")
    return values


def positive_ints(values: list[int], name: str) -> list[int]:
    """A grid of sizes (ranks, token counts, widths): at least one value, each ≥ 1."""
    non_empty(values, name)
    if any(v < 1 for v in values):
        raise ValueError(f"{name} must be ≥ 1")
    return values


METHODS: Registry[type[MethodGrid]] = Registry("method")
