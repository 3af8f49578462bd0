"""Which field names are valid where in a sweep document, and what to say about one that is not.

The spec's own pydantic models answer for most of the document; three places are typed loosely there
and answered here instead: `methods` (keys are registered PEFT methods, each section is that method's
grid, peft's spellings included), `evaluation` (the evaluators' `EvaluationSpec`) and free-form maps
(`resources.custom`), where any name goes. Used by validation errors (`unknown field …, did you mean`)
and by overrides, which are checked against it before they touch the document.
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from alignsweep.suggest import did_you_mean
from alignsweep.trainables.methods import METHODS

#: A position whose keys are registered names, not fields: (kind, names).
Registered = tuple[str, list[str]]


def _evaluation_model() -> type[BaseModel]:
    from alignsweep.evaluators.config import EvaluationSpec

    return EvaluationSpec


def _arms(annotation: Any) -> list[Any]:
    """`X | None`, `Union[…]`, `Annotated[X, …]` → the types a value may have."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return [a for arm in get_args(annotation) for a in _arms(arm)]
    if origin is not None and getattr(origin, "__name__", "") == "Annotated":
        return _arms(get_args(annotation)[0])
    return [annotation]


def _step(annotation: Any, part: Any) -> Any:
    """The type one level further down (`part`: a field name or a list index), or None when unknown."""
    for arm in _arms(annotation):
        if isinstance(arm, type) and issubclass(arm, BaseModel):
            field = arm.model_fields.get(part) if isinstance(part, str) else None
            if field is not None:
                return field.annotation
        elif get_origin(arm) is list and isinstance(part, int):
            return get_args(arm)[0]
        elif get_origin(arm) is dict:
            return get_args(arm)[1]
    return None


def names_at(root: type[BaseModel], loc: tuple | list) -> list[str] | Registered | None:
    """The valid keys at `loc` of a `root` (the `SweepSpec`) document: field names, or `(kind, names)`
    where keys are registered names; None where any key goes or the place is not a mapping the spec knows."""
    loc = tuple(loc)
    if loc[:1] == ("methods",):
        if len(loc) == 1:
            return ("method", METHODS.names())
        if len(loc) == 2 and loc[1] in METHODS:
            grid = METHODS.get(loc[1])
            return [*grid.model_fields, *grid.peft_aliases]
        return None
    annotation: Any = root
    for i, part in enumerate(loc):
        if i == 0 and part == "evaluation":
            annotation = _evaluation_model()
            continue
        annotation = _step(annotation, part)
        if annotation is None:
            return None
    models = [a for a in _arms(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    return list(models[0].model_fields) if models else None


def unknown_field(root: type[BaseModel], loc: tuple | list) -> str:
    """`unknown field (did you mean 'training'?)` for the last key of `loc`, or the valid names there."""
    names = names_at(root, tuple(loc)[:-1])
    word = str(tuple(loc)[-1]) if loc else ""
    if not isinstance(names, list):
        return "unknown field"
    hint = did_you_mean(word, names)
    return f"unknown field ({hint})" if hint else f"unknown field (fields here: {', '.join(names)})"
