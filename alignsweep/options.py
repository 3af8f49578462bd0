"""`Strict`: the base of every spec fragment (sweep sections, evaluation sections, judge and method options).

Why one base: a typo in a 235-trial sweep must fail validation (`extra="forbid"`), and a validated spec
must not change under the code that reads it (`frozen=True`), and a number that is NaN or infinite is
never a setting (`allow_inf_nan=False`). Plug-ins that declare their own options
(judges, benchmarks) sit below the spec package, so the base lives at the package root.

`plain_numbers` is the one guard every numeric field shares (method grids use it too): pydantic's lax
mode reads `true` as 1 and takes integers of any size, so `batch_size: true` or `max_steps: 1e400`
written as digits would pass validation and fail later, inside a trial, as a traceback.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, field_validator

#: The largest integer any setting may hold (a signed 64-bit integer: what Arrow, torch and numpy store).
MAX_INT = 2**63 - 1


def _leaf_types(annotation: Any) -> set[Any]:
    args = get_args(annotation)
    if not args:
        return {annotation}
    return set().union(*(_leaf_types(a) for a in args))


def _numeric(annotation: Any) -> bool:
    leaves = _leaf_types(annotation)
    return bool(leaves & {int, float}) and bool not in leaves


def short_repr(value: Any) -> str:
    """`repr(value)`, cut short: an error line quotes the value, never 500 digits of it."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}…({len(text)} characters)"


def plain_numbers(model: type[BaseModel], value: Any, field_name: str) -> Any:
    """Refuse, in a numeric field (or a list/mapping of numbers), a boolean or an integer past 64 bits."""
    field = model.model_fields.get(field_name)
    if field is None or not _numeric(field.annotation):
        return value
    items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
    for item in items:
        if isinstance(item, bool):
            raise ValueError(f"expected a number, not a boolean (got {item!r})")
        if isinstance(item, int) and abs(item) > MAX_INT:
            raise ValueError(f"number too large: at most {MAX_INT} (got {short_repr(item)})")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_numbers(cls, value: Any, info: Any) -> Any:
        return plain_numbers(cls, value, info.field_name)
