"""The judge contract: what a judge is, what it returns, and how a spec names one.

A judge is anything with a `name` and `judge(pairs) -> list[Verdict]` (the `Judge` Protocol), built
from a `JudgeSpec` by the `JUDGES` registry, so a new judge is one registered factory. A verdict is
`safe`, `unsafe` or `unparsed`: a judge that cannot read its own output says so instead of passing
the response as safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Protocol, Sequence

from pydantic import Field, field_validator, model_validator

from alignsweep.models.loading import LoadOptions
from alignsweep.options import Strict
from alignsweep.registry import Registry

SAFE, UNSAFE, UNPARSED = "safe", "unsafe", "unparsed"


@dataclass(frozen=True)
class Verdict:
    verdict: str  # safe | unsafe | unparsed
    hazard_codes: tuple[str, ...] = ()  # taxonomy category ids the judge named (guards only)
    refused: bool | None = None  # whether the response is a refusal, when the judge can tell
    p_unsafe: float | None = None  # a guard's first-token probability of "unsafe", when computed
    raw: str = ""  # the judge's own output, for auditing unparsed verdicts
    # (judge name, verdict) of every member when an ensemble combined this verdict; empty otherwise
    votes: tuple[tuple[str, str], ...] = ()


class Judge(Protocol):
    name: str

    def judge(self, pairs: Sequence[tuple[str, str]]) -> list[Verdict]: ...


JudgeFactory = Callable[["JudgeSpec"], Judge]
JUDGES: Registry[JudgeFactory] = Registry("judge")


def build_judge(spec: "JudgeSpec") -> Judge:
    return JUDGES.get(spec.name)(spec)


class JudgeSpec(Strict):
    name: str = "refusal"
    model: str | None = None  # llama_guard / hf_classifier: hub id, path, or tiny:<family>
    phrases: list[str] | None = None  # refusal: replaces the default refusal prefixes
    categories: Literal[11, 14] | None = None  # llama_guard: 11 (Guard 2) or 14 (Guard 3); default from the name
    unsafe_threshold: float | None = Field(default=None, gt=0, lt=1)  # llama_guard: P(unsafe) threshold
    label_map: dict[str, Literal["safe", "unsafe"]] | None = None  # hf_classifier
    text: Literal["response", "pair"] = "response"  # hf_classifier input
    max_new_tokens: int = Field(default=16, ge=1)
    batch_size: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"  # "auto": sized to the memory budget
    # Loading settings of the judge's model, as a sweep's `models` entries have them: `auto` keeps the
    # checkpoint's own dtype (bfloat16 for Llama Guard), so an 8B guard is never upcast to float32.
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False
    allow_unsafe_weights: bool = False
    revision: str | None = None  # a hub judge model's branch, tag or commit

    def load_options(self) -> LoadOptions:
        return LoadOptions(dtype=self.dtype, trust_remote_code=self.trust_remote_code,
                           allow_unsafe_weights=self.allow_unsafe_weights, revision=self.revision)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in JUDGES:
            raise ValueError(JUDGES.unknown(value))
        return value

    @model_validator(mode="after")
    def _needs(self) -> "JudgeSpec":
        if self.name in ("llama_guard", "hf_classifier") and not self.model:
            raise ValueError(f"judge {self.name} needs `model`")
        if self.name == "hf_classifier" and not self.label_map:
            raise ValueError("judge hf_classifier needs `label_map` (its label → safe|unsafe)")
        return self


def as_dict(v: Verdict) -> dict[str, Any]:
    return {"verdict": v.verdict, "hazard_codes": list(v.hazard_codes), "refused": v.refused,
            "p_unsafe": v.p_unsafe, "raw": v.raw, "votes": [list(x) for x in v.votes]}


def votes_of(v: Verdict, judge_name: str) -> list[tuple[str, str]]:
    """Each judge's own verdict: an ensemble's members, else the one judge's."""
    return list(v.votes) if v.votes else [(judge_name, v.verdict)]
