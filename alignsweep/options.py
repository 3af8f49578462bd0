"""`Strict`: the base of every spec fragment (sweep sections, evaluation sections, judge and method options).

Why one base: a typo in a 235-trial sweep must fail validation (`extra="forbid"`), and a validated spec
must not change under the code that reads it (`frozen=True`), and a number that is NaN or infinite is
never a setting (`allow_inf_nan=False`). Plug-ins that declare their own options
(judges, benchmarks) sit below the spec package, so the base lives at the package root.
"""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
