"""The plan of one trial: what the engine hands to a trainable, as plain data.

It travels to Ray workers as the Tune config; the engine builds it (`engine.plan.expand_trials`), the
trainable only reads it, so the trainable never imports the engine.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrialPlan:
    """Everything one trial needs, as plain data (it travels to Ray workers as Tune config)."""

    variant_id: str
    sweep: str
    base_model: str
    model: dict[str, Any]
    method: str
    hyperparameters: dict[str, Any]
    learning_rate: float
    seed: int
    epochs: int | None
    max_steps: int | None
    training: dict[str, Any] = field(default_factory=dict)

    def to_config(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TrialPlan":
        return cls(**config)

    @property
    def family(self) -> str:
        return model_short_name(self.base_model)


def model_short_name(ref: str) -> str:
    """`tiny:llama` → `llama`; `meta-llama/Meta-Llama-3-8B-Instruct` → `meta-llama-3-8b-instruct`."""
    name = ref.split(":", 1)[1] if ref.startswith("tiny:") else ref.rstrip("/").split("/")[-1]
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"
