"""`EvaluationSpec`: the `evaluation:` section of a sweep spec, validated before Ray starts.

Defaults run on a 2-CPU laptop: evaluator and judge actors ask for 0 CPUs, because an actor that
holds the machine's CPUs leaves every trial PENDING with no warning (see stack notes). On a cluster,
give judges a (fractional) GPU here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from alignsweep.evaluators.judges import JudgeSpec
from alignsweep.inference.coherence import DEFAULT_THRESHOLD as COHERENCE_THRESHOLD
from alignsweep.options import Strict

DEFAULT_BBQ_PROMPT = "{context}\n\nQ: {question}\nA:"
DEFAULT_BBQ_CONTINUATION = " {answer}"


def _data_source(value: str) -> str:
    """`bundled`, `hf:<id>[:<split>]`, or a local path, made absolute against the working directory.

    Whether the path exists is checked by the pre-run checks (`spec.preflight`), not here: a spec must
    validate (and `--dry-run` print its plan) on a machine that has not downloaded the data yet. The
    path is made absolute now so every process (Ray actors on other nodes included) reads the same file.
    """
    if value == "bundled" or value.startswith("hf:"):
        return value
    if not value.strip():
        raise ValueError("data source is empty (give bundled, hf:<id>, or a path)")
    return os.path.abspath(os.path.expanduser(value))


class Resources(Strict):
    """What one actor asks of Ray. `custom` names cluster resources (e.g. `{judge: 1}`) to pin actors
    to nodes that advertise them: nodes may share an IP, so `node:<ip>` cannot tell them apart."""

    cpu: float = Field(default=0.0, ge=0)
    gpu: float = Field(default=0.0, ge=0)
    custom: dict[str, float] = Field(default_factory=dict)

    @field_validator("custom")
    @classmethod
    def _custom(cls, value: dict[str, float]) -> dict[str, float]:
        for name, amount in value.items():
            if name.upper() in ("CPU", "GPU", "MEMORY", "OBJECT_STORE_MEMORY") or amount < 0:
                raise ValueError(f"custom resource {name!r}: give cpu/gpu as their own fields, amounts >= 0")
        return value


class SafetySpec(Strict):
    enabled: bool = True
    data: str = "bundled"
    limit: int | None = Field(default=None, ge=1, description="at most this many prompts per category")
    max_new_tokens: int = Field(default=48, ge=1)
    # "auto": as many prompts per batch as the memory budget holds (evaluators.generation.auto_batch_size)
    batch_size: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    judges: list[JudgeSpec] = Field(default_factory=lambda: [JudgeSpec()], min_length=1)
    ensemble: Literal["any_unsafe", "majority"] = "any_unsafe"
    judge_resources: Resources = Field(default_factory=Resources)
    judge_max_restarts: int = Field(default=2, ge=0)
    judge_max_batch: int = Field(default=64, ge=1)
    # The judge's agreement with human labels, checked once at sweep start and shown beside every
    # safe rate: `bundled` (the project's labelled replies), a CSV/JSONL path, or null (no check).
    labels: str | None = "bundled"
    # Each response's coherence under the base model (inference.coherence), and the threshold of `coherent`.
    coherence: bool = True
    coherence_threshold: float = Field(default=COHERENCE_THRESHOLD, gt=0, lt=1)

    _data = field_validator("data")(classmethod(lambda cls, v: _data_source(v)))
    _labels = field_validator("labels")(classmethod(lambda cls, v: None if v is None else _data_source(v)))


class FairnessSpec(Strict):
    enabled: bool = True
    data: str = "bundled"
    limit: int | None = Field(default=None, ge=1, description="at most this many items per BBQ category")
    prompt: str = DEFAULT_BBQ_PROMPT
    continuation: str = DEFAULT_BBQ_CONTINUATION
    extra_unknowns: bool = False  # add lm-eval's extra "unknown" phrasings as choices
    batch_size: int = Field(default=64, ge=1)  # choices per forward pass (each context is encoded once)

    _data = field_validator("data")(classmethod(lambda cls, v: _data_source(v)))

    @field_validator("prompt")
    @classmethod
    def _prompt_fields(cls, value: str) -> str:
        try:
            value.format(context="", question="")
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:  # `{context.x}`
            raise ValueError(f"prompt may use only {{context}} and {{question}} ({exc})") from None
        return value

    @field_validator("continuation")
    @classmethod
    def _continuation_fields(cls, value: str) -> str:
        try:
            value.format(answer="")
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:  # `{context.x}`
            raise ValueError(f"continuation may use only {{answer}} ({exc})") from None
        return value


class OverRefusalSpec(Strict):
    enabled: bool = True
    data: str = "bundled"
    limit: int | None = Field(default=None, ge=1, description="at most this many prompts per category")
    judge: JudgeSpec = Field(default_factory=JudgeSpec)  # decides "refused" (refusal) or "unsafe" (a guard)
    # What this judge's own actor asks (when it is not the safety judge): default `safety.judge_resources`.
    # The refusal-phrase matcher loads no model, so `{gpu: 0}` spares a GPU beside a guard model.
    judge_resources: Resources | None = None

    _data = field_validator("data")(classmethod(lambda cls, v: _data_source(v)))


class UtilitySpec(Strict):
    """Task accuracy on benign multiple-choice questions (bundled, or a JSONL of the same shape)."""

    enabled: bool = True
    data: str = "bundled"
    limit: int | None = Field(default=None, ge=1, description="at most this many questions per category")

    _data = field_validator("data")(classmethod(lambda cls, v: _data_source(v)))


class EvaluatorPoolSpec(Strict):
    """How checkpoints reach evaluator actors. Default: a pool of `actors_per_model` per base model
    (on a cluster, each base on its own GPU share). `shared_actors: N` instead starts N actors that
    each hold *every* base model: on a laptop a pool per base is a process per base, each paying
    the ~10 s torch/transformers/peft import while the trials wait, and since trials of one base
    run side by side (the grid is ordered by model) its single actor serialises them anyway."""

    actors_per_model: int = Field(default=1, ge=1)
    shared_actors: int | None = Field(default=None, ge=1)
    resources: Resources = Field(default_factory=Resources)
    max_restarts: int = Field(default=2, ge=0)
    request_retries: int = Field(default=2, ge=0)

    @model_validator(mode="after")
    def _one_layout(self) -> "EvaluatorPoolSpec":
        if self.shared_actors is not None and self.actors_per_model != 1:
            raise ValueError("set actors_per_model (a pool per base model) or shared_actors (actors holding "
                             "every base model), not both")
        return self


class EvaluationSpec(Strict):
    """`tasks`: lm-evaluation-harness task YAMLs (multiple choice, local JSON data), run unchanged.
    lm-eval resolves a task's relative data paths against the working directory; `tasks_cwd` records
    the one the spec was validated in, so an evaluator actor (whose working directory is Ray's)
    resolves them the same way."""

    tasks: list[str] = Field(default_factory=list)
    tasks_cwd: str | None = None
    safety: SafetySpec = Field(default_factory=SafetySpec)
    fairness: FairnessSpec = Field(default_factory=FairnessSpec)
    over_refusal: OverRefusalSpec = Field(default_factory=OverRefusalSpec)
    utility: UtilitySpec = Field(default_factory=UtilitySpec)
    evaluators: EvaluatorPoolSpec = Field(default_factory=EvaluatorPoolSpec)
    # `all`: a trial a scheduler stopped gets the full evaluation of its last checkpoint too (its
    # interval scores may be screens only); `finished`: only trials that reach their last step do.
    final: Literal["all", "finished"] = Field(default="all", description="which trials end with a full evaluation")

    @field_validator("tasks")
    @classmethod
    def _task_files(cls, value: list[str]) -> list[str]:
        out = []
        for path in value:
            resolved = Path(path).expanduser()
            if not resolved.is_file():
                raise ValueError(f"task file {path!r}: no such file")
            out.append(str(resolved.resolve()))
        return out

    @model_validator(mode="after")
    def _remember_cwd(self) -> "EvaluationSpec":
        if self.tasks and self.tasks_cwd is None:
            object.__setattr__(self, "tasks_cwd", os.getcwd())
        return self

    def judge_resources(self, role: str) -> Resources:
        """What the judge actor of `role` (`safety` | `over_refusal`) asks of Ray."""
        if role == "over_refusal" and self.over_refusal.judge_resources is not None:
            return self.over_refusal.judge_resources
        return self.safety.judge_resources
