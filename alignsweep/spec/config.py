"""The sweep spec: one YAML file, validated completely before Ray starts.

Every error is one line that names the file, the line, the field path and the offending value, and
raises `InputError` (exit 2) — a typo in a 235-trial sweep must not cost a cluster start-up to find.
`key=value` overrides (`spec.overrides`: dotted paths, list indices, YAML-typed values) apply to the
raw document before validation, so they are checked exactly like the file; an error in an override
names the override, not the file. An unknown field is answered with the closest valid name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from alignsweep.errors import InputError
from alignsweep.models.loading import LoadOptions
from alignsweep.options import Strict, short_repr
from alignsweep.spec.fields import unknown_field
from alignsweep.spec.overrides import apply_override
from alignsweep.spec.yaml_doc import parse_document
from alignsweep.suggest import did_you_mean
from alignsweep.spec.tracking import TrackingSpec
from alignsweep.trainables.methods import METHODS, MethodGrid

SEED_MAX = 2**32 - 1  # numpy's limit; torch derives per-epoch seeds from it without overflow
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _as_list(value: Any) -> Any:
    return value if value is None or isinstance(value, list) else [value]


class ModelSpec(Strict):
    """A base model: hub id, local path or `tiny:<family>`, with per-model opt-ins for unsafe loading."""

    ref: str
    trust_remote_code: bool = False
    allow_unsafe_weights: bool = False
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    revision: str | None = Field(default=None, description="hub models: the branch, tag or commit to load")

    def load_options(self) -> LoadOptions:
        return LoadOptions(dtype=self.dtype, trust_remote_code=self.trust_remote_code,
                           allow_unsafe_weights=self.allow_unsafe_weights, revision=self.revision)

    @field_validator("ref")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("model reference is empty")
        return value.strip()

    @field_validator("revision")
    @classmethod
    def _hub_revision(cls, value: str | None, info: Any) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("empty revision (give a hub branch, tag or commit)")
        if value is not None and str(info.data.get("ref", "")).startswith("tiny:"):
            raise ValueError(f"a revision pins a hub model's files; {info.data['ref']} is built here (drop it)")
        return value


class TrainingSpec(Strict):
    dataset: str = Field(default="bundled", min_length=1)
    dataset_split: str = "train"
    dataset_revision: str | None = Field(default=None, description="a hub dataset's branch, tag or commit")
    max_examples: int | None = Field(default=None, ge=1)
    epochs: list[int] | None = None
    max_steps: list[int] | None = None
    learning_rates: list[float] = Field(default_factory=lambda: [1e-3])
    batch_size: int = Field(default=8, ge=1)
    max_seq_length: int = Field(default=128, ge=8)
    eval_interval: int = Field(default=20, ge=1, description="optimizer steps between checkpoints/evals")
    seeds: list[Annotated[int, Field(ge=0, le=SEED_MAX)]] = Field(default_factory=lambda: [0])
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_steps: int = Field(default=0, ge=0)
    heldout_examples: int = Field(default=32, ge=0, description="tuning examples held out for the utility loss")
    control_eval: bool = Field(default=True, description="score each adapter at step 0, untrained: the control")
    # Accelerate: mixed precision of the forward/backward (weights stay in the model's dtype), optimizer
    # steps of several micro-batches, and activation recomputation to fit long sequences.
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    gradient_accumulation_steps: int = Field(default=1, ge=1, description="micro-batches per optimizer step")
    gradient_checkpointing: bool = False

    _lists = field_validator("epochs", "max_steps", "learning_rates", "seeds", mode="before")(
        classmethod(lambda cls, v: _as_list(v))
    )

    @field_validator("epochs", "max_steps", "learning_rates", "seeds")
    @classmethod
    def _grid(cls, values: list[Any] | None, info: Any) -> list[Any] | None:
        if values is None:
            return None
        if not values:
            raise ValueError("empty grid: list at least one value")
        if info.field_name != "seeds" and any(v <= 0 for v in values):
            raise ValueError("every value must be > 0")
        return values

    @model_validator(mode="before")
    @classmethod
    def _length(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = [k for k in ("epochs", "max_steps") if data.get(k) is not None]
            if len(given) == 2:
                raise ValueError("give one of training.epochs or training.max_steps, not both")
            if not given:
                data = {**data, "max_steps": [100]}
        return data


class SchedulerSpec(Strict):
    name: str = "asha"
    metric: str = "loss"
    mode: Literal["min", "max"] = "min"
    grace_period: int = Field(default=1, ge=1, description="evaluations before a trial may be stopped")
    reduction_factor: float = Field(default=2.0, gt=1)
    min_samples_required: int = Field(default=3, ge=1)
    # Losses of different tokenizers, families and PEFT methods are not on one scale: rank a trial only
    # against trials of its own group. `[]`: one ranking over the whole sweep.
    group_by: list[str] = Field(default_factory=lambda: ["model", "method"],
                                description="trials a loss scheduler compares: same base model and/or PEFT method")
    # `alignment`: stop on the screen's change vs base, then hand every other decision to `then`.
    then: str = Field(default="asha", description="scheduler the alignment stopper wraps (on `metric`)")
    max_safe_rate_drop: float = Field(default=10.0, gt=0, description="X: stop below base safe rate − X points")
    max_bias_increase: float = Field(default=10.0, gt=0, description="Y: stop above base ambiguous bias + Y (×100)")
    screen_fraction: float = Field(default=0.25, gt=0, le=1, description="share of each category screened per interval")
    # The noise-aware rule (`schedulers.AlignmentRule`); defaults are what stopped no trial the full evaluation kept on the demo.
    screen_confidence_z: float = Field(default=2.0, ge=0, le=5,
                                       description="stop only if the screened change passes X / Y by z standard errors (0: point rule)")
    screen_patience: int = Field(default=1, ge=1, description="consecutive breaching screens before a stop")
    screen_warmup: float = Field(default=0.5, ge=0, lt=1, description="share of planned steps before a screen may stop a trial")
    min_bias_answers: int = Field(default=30, ge=1, description="judge screened bias only on at least this many non-unknown answers")
    enforce: bool = Field(default=True, description="false: record what would be stopped, stop nothing (shadow)")

    @field_validator("group_by", mode="before")
    @classmethod
    def _group_keys(cls, value: Any) -> Any:
        allowed = ("model", "method")
        value = _as_list(value)
        if not isinstance(value, list):
            return value
        for key in value:
            if key not in allowed:
                raise ValueError(f"unknown group key {key!r} (allowed: {', '.join(allowed)}; [] ranks all trials together)")
        if len(set(value)) != len(value):
            raise ValueError(f"group key listed twice: {value}")
        return value

    @field_validator("name", "then")
    @classmethod
    def _known(cls, value: str, info: Any) -> str:
        from alignsweep.scheduling import ALIGNMENT, SCHEDULERS

        if value not in SCHEDULERS:
            raise ValueError(SCHEDULERS.unknown(value))
        if info.field_name == "then" and value == ALIGNMENT:
            raise ValueError("the alignment stopper cannot wrap itself; choose asha, median or none")
        return value


class ResourcesSpec(Strict):
    """Per trial; `custom` asks for cluster resources by name (e.g. `{trainer: 1}`) to pin trials to nodes."""

    cpu: float = Field(default=1.0, ge=0)
    gpu: float = Field(default=0.0, ge=0)
    custom: dict[str, float] = Field(default_factory=dict)
    max_concurrent: int | None = Field(default=None, ge=1)


class FailureSpec(Strict):
    max_retries: int = Field(default=2, ge=0)


class SweepSpec(Strict):
    """A whole sweep: base models × PEFT methods × their hyperparameters × training settings."""

    name: str
    seed: int = Field(default=0, ge=0, le=SEED_MAX)
    models: list[ModelSpec]
    methods: dict[str, dict[str, Any]]
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    failure: FailureSpec = Field(default_factory=FailureSpec)
    evaluation: dict[str, Any] | None = None
    tracking: TrackingSpec | None = None  # MLflow / W&B runs per trial (spec/tracking.py)
    results: str = "results"

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError("sweep name must be 1-64 characters of letters, digits, '_', '-', '.'")
        return value

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, value: Any) -> Any:
        value = _as_list(value)
        if isinstance(value, list):
            return [{"ref": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("models")
    @classmethod
    def _some_models(cls, value: list[ModelSpec]) -> list[ModelSpec]:
        if not value:
            raise ValueError("list at least one base model")
        refs = [m.ref for m in value]
        dupes = sorted({r for r in refs if refs.count(r) > 1})
        if dupes:
            raise ValueError(f"model listed twice: {dupes[0]}")
        return value

    @field_validator("methods", mode="before")
    @classmethod
    def _methods(cls, value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):  # `methods: [lora, ia3]` → defaults
            value = {name: {} for name in value}
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _validate_methods(self) -> "SweepSpec":
        if not self.methods:
            raise ValueError("methods: list at least one PEFT method")
        for name, raw in self.methods.items():
            if name not in METHODS:
                raise ValueError(f"methods.{name}: {METHODS.unknown(name)}")
            try:
                METHODS.get(name).model_validate(raw)
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ("methods", name, *err["loc"])
                raise ValueError(f"{_dotted(loc)}: {_describe(err, loc)}") from None
        return self

    def method_grids(self) -> dict[str, MethodGrid]:
        return {name: METHODS.get(name).model_validate(raw) for name, raw in self.methods.items()}

    def evaluation_spec(self) -> Any:
        """The evaluation section, validated by the evaluators' own schema (None when disabled)."""
        if self.evaluation is None:
            return None
        from alignsweep.evaluators.config import EvaluationSpec

        return EvaluationSpec.model_validate(self.evaluation)


# ---------------------------------------------------------------- loading and error reporting


def load_spec(path: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Read, override and validate a sweep YAML; every failure is an `InputError` naming file:line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read sweep file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    return spec_from_text(path, text, overrides)


def spec_from_text(path: str | Path, text: str, overrides: list[str] | None = None) -> SweepSpec:
    """`load_spec` of a text already read (`resume` reads the stored `sweep.yaml` through the store)."""
    try:
        return _load_text(Path(path), text, overrides)
    except RecursionError:  # `a: &x [*x]`: an alias inside its own anchor makes an endless document
        raise InputError(f"{path}: a YAML alias refers to the node that defines it (a document without end)") from None


def _load_text(path: Path, text: str, overrides: list[str] | None) -> SweepSpec:
    node, raw = parse_document(path, text)
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a sweep file must be a mapping of fields, got {type(raw).__name__}")
    lines = _line_index(node)
    for item in overrides or []:
        owned = apply_override(raw, item, SweepSpec)
        lines = {k: v for k, v in lines.items() if not any(k[: len(p)] == p for p in owned)}
        lines.update({p: f"override {item!r}" for p in owned})
    return validate_spec(raw, source=str(path), lines=lines)


def validate_spec(raw: dict[str, Any], source: str = "<spec>", lines: dict[tuple, int | str] | None = None) -> SweepSpec:
    """Validate a raw spec document (the evaluation section by the evaluators' own schema)."""
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise _input_error(exc, (), source, lines or {}) from None
    try:
        spec.evaluation_spec()
    except ValidationError as exc:
        raise _input_error(exc, ("evaluation",), source, lines or {}) from None
    return spec


def _input_error(exc: ValidationError, prefix: tuple, source: str, lines: dict[tuple, int | str]) -> InputError:
    """The first validation error as one line: `file:line: field.path: message (got value)`."""
    err = exc.errors()[0]
    loc = prefix + tuple(err["loc"])
    message = _describe(err, loc)
    nested = re.match(r"^(methods\.[\w.\[\]-]+): (.*)$", message)
    if nested:
        loc, message = tuple(_undotted(nested.group(1))), nested.group(2)
    line = _nearest_line(lines, loc)
    where = line if isinstance(line, str) else f"{source}:{line}" if line else source
    return InputError(f"{where}: {_dotted(loc) or '<top level>'}: {message}")


def _describe(err: dict[str, Any], loc: tuple) -> str:
    """The error text plus the offending value, unless the text already quotes it."""
    if err["type"] == "missing":
        return "required field is missing"
    if err["type"] == "extra_forbidden":
        return unknown_field(SweepSpec, loc)
    message = _clean(err)
    value = err.get("input")
    shown = value is not None and not isinstance(value, (dict, list)) and repr(value) not in message
    notes = [f"got {short_repr(value)}"] if shown and "(got " not in message else []
    if err["type"] == "literal_error" and isinstance(value, str):  # `dtype: bfloat` → 'bfloat16'
        notes.append(did_you_mean(value, re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))))
    notes = [n for n in notes if n]
    return f"{message} ({'; '.join(notes)})" if notes else message


def _clean(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _dotted(loc: tuple | list) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _undotted(path: str) -> list[Any]:
    parts: list[Any] = []
    for piece in path.split("."):
        m = re.match(r"^([^\[]+)((?:\[\d+\])*)$", piece)
        if not m:
            parts.append(piece)
            continue
        parts.append(m.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return parts


def _line_index(node: Any, prefix: tuple = ()) -> dict[tuple, int]:
    """Map each field path of the YAML document to its 1-based line."""
    index: dict[tuple, int] = {}
    if node is None:
        return index
    index[prefix] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = prefix + (key.value,)
            index[path] = key.start_mark.line + 1
            index.update({k: v for k, v in _line_index(value, path).items() if k != path})
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            index.update(_line_index(value, prefix + (i,)))
    return index


def _nearest_line(lines: dict[tuple, int | str], loc: tuple) -> int | str | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None
