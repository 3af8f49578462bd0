"""Expand a sweep spec into the concrete list of trials it asks for.

The expansion is explicit (not a Tune grid product) because each method has its own grid; the
resulting list is what `--dry-run` counts and what Tune runs, one entry per trial. Each trial gets a
`variant_id` derived from its content, so a rerun or resume addresses the same store files.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any

from alignsweep.spec.config import SweepSpec
from alignsweep.errors import InputError
from alignsweep.trainables.plan import TrialPlan, model_short_name


def _variant_id(parts: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{model_short_name(parts['base_model'])}-{parts['method']}-{digest}"


def expand_trials(spec: SweepSpec) -> list[TrialPlan]:
    """All trials of the sweep, in a stable order (model, method, grid order)."""
    grids = {"epochs", "max_steps", "learning_rates", "seeds"}
    training = {k: v for k, v in spec.training.model_dump().items() if k not in grids}
    # Unpinned revisions stay out of the trial digest, so trial ids of sweeps from before they existed
    # do not change; a pinned one is part of what a trial is.
    digest_training = {k: v for k, v in training.items() if not (k == "dataset_revision" and v is None)}
    lengths = [("epochs", e) for e in spec.training.epochs or []] + [
        ("max_steps", s) for s in spec.training.max_steps or []
    ]
    plans: list[TrialPlan] = []
    for model in spec.models:
        for method, grid in spec.method_grids().items():
            axes = grid.grid()
            names = list(axes)
            rates = grid.learning_rates or spec.training.learning_rates
            for values in itertools.product(*(axes[n] for n in names)):
                hp = {**grid.fixed(), **dict(zip(names, values))}
                for lr, seed, (kind, length) in itertools.product(rates, spec.training.seeds, lengths):
                    parts = {
                        "base_model": model.ref,
                        "method": method,
                        "hp": hp,
                        "lr": lr,
                        "seed": seed,
                        kind: length,
                        "training": digest_training,
                        **({"revision": model.revision} if model.revision is not None else {}),
                    }
                    plans.append(
                        TrialPlan(
                            variant_id=_variant_id(parts),
                            sweep=spec.name,
                            base_model=model.ref,
                            model=model.model_dump(),
                            method=method,
                            hyperparameters=hp,
                            learning_rate=float(lr),
                            seed=int(seed),
                            epochs=length if kind == "epochs" else None,
                            max_steps=length if kind == "max_steps" else None,
                            training=training,
                        )
                    )
    ids = [p.variant_id for p in plans]
    if len(set(ids)) != len(ids):  # identical grid points listed twice
        raise InputError("the sweep lists the same trial twice; remove duplicate grid values")
    return plans
