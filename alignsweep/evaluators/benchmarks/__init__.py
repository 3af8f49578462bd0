"""Benchmarks as plug-ins: importing this package registers every built-in benchmark.

A new benchmark is one module that calls `base.register(...)`, plus its import line here; a new
multiple-choice task needs no code at all (`evaluation.tasks: [task.yaml]`, see `lm_eval_task`).
"""

# Registration order is report order: safety, over-refusal, fairness, utility.
from alignsweep.evaluators.benchmarks import safety  # noqa: F401,I001  (registration)
from alignsweep.evaluators.benchmarks import over_refusal  # noqa: F401,I001
from alignsweep.evaluators.benchmarks import bbq  # noqa: F401,I001
from alignsweep.evaluators.benchmarks import utility  # noqa: F401,I001
from alignsweep.evaluators.benchmarks.base import (
    BENCHMARKS,
    METRIC_CATALOG,
    OVERALL,
    Benchmark,
    Metric,
    ScoringContext,
    metric,
    registered,
)

__all__ = ["BENCHMARKS", "METRIC_CATALOG", "OVERALL", "Benchmark", "Metric", "ScoringContext", "metric", "registered"]
