"""The sweep spec as JSON Schema (`alignsweep schema`), for editors: completion, hover docs, and red
underlines on the same mistakes validation refuses.

pydantic writes most of it from the spec's models; what it cannot see is added here, so the schema
accepts exactly the shorthands validation accepts: a scalar where a grid is a list (`max_steps: 200`),
a model as a plain string, `methods` as a list of names or as one section per registered method (each
its grid, peft's spellings included), `evaluation` as the evaluators' own schema, and the registered
names of schedulers, methods and judges as enums. `tests/test_schema.py` checks every bundled sweep
file against it.
"""

from __future__ import annotations

from typing import Any

from alignsweep.scheduling import ALIGNMENT, SCHEDULERS
from alignsweep.spec.config import _SLUG, SweepSpec, TrainingSpec
from alignsweep.trainables.methods import METHODS

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _widen(prop: dict[str, Any]) -> None:
    """A list field that also takes one value (`seeds: 0` means `[0]`): allow the item type itself."""
    if prop.get("type") == "array":
        array = {k: prop.pop(k) for k in ("type", "items", "minItems") if k in prop}
        prop["anyOf"] = [array["items"], array] if "items" in array else [array]
    elif "anyOf" in prop:
        items = [arm["items"] for arm in prop["anyOf"] if arm.get("type") == "array" and "items" in arm]
        prop["anyOf"] = items + prop["anyOf"]


def _merge(defs: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` without its `$defs`, which join `defs` (two models of one name would clash: an error)."""
    for name, definition in schema.pop("$defs", {}).items():
        if defs.setdefault(name, definition) != definition:
            raise AssertionError(f"two spec models are both called {name!r}")
    return schema


def _method_grids(defs: dict[str, Any]) -> dict[str, Any]:
    """`methods:` as sections per registered method (each its grid), or a list of method names."""
    sections = {}
    for name in METHODS.names():
        grid = METHODS.get(name)
        schema = _merge(defs, grid.model_json_schema())
        for prop in schema["properties"].values():
            _widen(prop)  # every list field of a grid takes a scalar
        for alias, field in grid.peft_aliases.items():
            schema["properties"][alias] = {**schema["properties"][field], "title": alias,
                                           "description": f"peft's name for `{field}`"}
        schema["title"] = f"methods.{name}"
        defs[f"method.{name}"] = schema
        sections[name] = {"anyOf": [{"$ref": f"#/$defs/method.{name}"}, {"type": "null"}]}
    return {
        "title": "Methods",
        "description": "PEFT methods to sweep, each with its hyperparameter grid (a list of values is a sweep dimension)",
        "anyOf": [{"type": "object", "properties": sections, "additionalProperties": False, "minProperties": 1},
                  {"type": "array", "items": {"enum": METHODS.names()}, "minItems": 1}],
    }


def sweep_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a sweep YAML file."""
    from alignsweep.evaluators.config import EvaluationSpec
    from alignsweep.evaluators.judges import JUDGES

    schema = SweepSpec.model_json_schema()
    defs = schema.setdefault("$defs", {})
    props = schema["properties"]
    props["name"]["pattern"] = _SLUG.pattern
    training = defs[TrainingSpec.__name__]["properties"]
    for field in ("epochs", "max_steps", "learning_rates", "seeds"):
        _widen(training[field])
    scheduler = defs["SchedulerSpec"]["properties"]
    _widen(scheduler["group_by"])
    scheduler["name"]["enum"] = SCHEDULERS.names()
    scheduler["then"]["enum"] = [n for n in SCHEDULERS.names() if n != ALIGNMENT]
    model = {"anyOf": [{"type": "string", "description": "hub id, local path or tiny:<family>"},
                       {"$ref": "#/$defs/ModelSpec"}]}
    props["models"] = {"title": "Models", "description": "base models: hub ids, local paths or tiny:<family>, "
                       "each a string or a mapping with loading settings",
                       "anyOf": [*model["anyOf"], {"type": "array", "items": model, "minItems": 1}]}
    props["methods"] = _method_grids(defs)
    defs["EvaluationSpec"] = _merge(defs, EvaluationSpec.model_json_schema())
    defs["JudgeSpec"]["properties"]["name"]["enum"] = JUDGES.names()
    props["evaluation"] = {"title": "Evaluation", "default": None,
                           "description": "safety, over-refusal, fairness and utility scoring of checkpoints (null: off)",
                           "anyOf": [{"$ref": "#/$defs/EvaluationSpec"}, {"type": "null"}]}
    return {"$schema": DIALECT, **schema,
            "title": "alignsweep sweep spec"}
