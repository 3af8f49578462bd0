"""The Pareto front of a sweep: configurations no other configuration beats on every objective.

Why a SQL view (`pareto`) and not a report-only computation: the front is a question users ask of
the store ("which adapters are worth shipping?"), so `alignsweep query`, `alignsweep pareto` and the
report all read the same definition. Objectives are changes vs base where a base exists (so
families with different starting points compare), absolute where none can (held-out loss, parameter
share). Over-refusal counts as a cost: an adapter cannot reach the front by refusing everything.
A trial enters with its last full evaluation after step 0 (`step`; every trial, stopped or finished,
is fully evaluated where it ended — a screen is never a full score) and the held-out loss it logged
at that step; a missing objective counts as the worst value, never as a merit. An objective equal for
every trial (task accuracy 1.0 on the tiny demo models) changes no dominance; the report leaves it
out of its table and plots.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignsweep.evaluators.benchmarks import metric


@dataclass(frozen=True)
class Objective:
    column: str
    sense: str  # max | min
    label: str


def _label(benchmark: str, name: str) -> str:
    return metric(name, benchmark).label


# Labels from the metric catalog; the sense follows each metric's catalog direction (bias: |value|, lower).
OBJECTIVES: tuple[Objective, ...] = (
    Objective("d_safe_rate", "max", f"Δ {_label('safety', 'safe_rate')}"),
    Objective("d_over_refusal", "min", f"Δ {_label('over_refusal', 'over_refusal_rate')}"),
    Objective("d_fairness_accuracy", "max", f"Δ {_label('fairness', 'accuracy')}"),
    Objective("abs_bias_ambig", "min", f"|{_label('fairness', 'bias_ambig')}|"),
    Objective("d_task_accuracy", "max", f"Δ {_label('utility', 'task_accuracy')}"),
    Objective("heldout_loss", "min", _label("utility", "heldout_loss")),
    Objective("param_share", "min", "trainable share"),
)


def _clean(expr: str) -> str:
    return f"(CASE WHEN isnan({expr}) THEN NULL ELSE {expr} END)"


def _worst(o: Objective, alias: str) -> str:
    return f"coalesce({alias}.{o.column}, {'-1e300' if o.sense == 'max' else '1e300'})"


def _pick(benchmark: str, metric: str, expr: str = "delta") -> str:
    return f"max(CASE WHEN benchmark = '{benchmark}' AND metric = '{metric}' THEN {_clean(expr)} END)"


PARETO_POINTS_SQL = f"""
CREATE VIEW pareto_points AS
WITH d AS (
    SELECT sweep, trial_id, any_value(base_model) AS base_model, any_value(family) AS family,
           any_value(method) AS method,
           {_pick('safety', 'safe_rate')} AS d_safe_rate,
           {_pick('over_refusal', 'over_refusal_rate')} AS d_over_refusal,
           {_pick('fairness', 'accuracy')} AS d_fairness_accuracy,
           max(CASE WHEN benchmark = 'fairness' AND metric = 'bias_ambig'
                    THEN abs(CASE WHEN isnan(value) THEN 0 ELSE value END) END) AS abs_bias_ambig,
           {_pick('utility', 'task_accuracy')} AS d_task_accuracy,
           max(CASE WHEN benchmark = 'safety' AND metric = 'safe_rate' THEN step END) AS step
    FROM deltas WHERE category = 'overall' GROUP BY sweep, trial_id
), loss AS (  -- logged at every interval: the one of the scored step (or the latest before it)
    SELECT m.sweep, m.trial_id, m.value AS heldout_loss FROM metrics m JOIN d ON m.sweep = d.sweep AND m.trial_id = d.trial_id
    WHERE m.benchmark = 'utility' AND m.metric = 'heldout_loss' AND m.method <> 'base' AND m.step <= d.step
    QUALIFY m.step = max(m.step) OVER (PARTITION BY m.sweep, m.trial_id)
)
SELECT d.*, l.heldout_loss,
       t.trainable_params::DOUBLE / nullif(t.total_params, 0) AS param_share,
       t.seed, t.learning_rate, t.stopped_early
FROM d
LEFT JOIN loss l USING (sweep, trial_id)
LEFT JOIN trials t USING (sweep, trial_id)
WHERE d.d_safe_rate IS NOT NULL
"""

_AT_LEAST = " AND ".join(
    f"{_worst(o, 'b')} {'>=' if o.sense == 'max' else '<='} {_worst(o, 'a')}" for o in OBJECTIVES
)
_BETTER = " OR ".join(f"{_worst(o, 'b')} {'>' if o.sense == 'max' else '<'} {_worst(o, 'a')}" for o in OBJECTIVES)

PARETO_SQL = f"""
CREATE VIEW pareto AS
SELECT a.*, count(b.trial_id) AS dominated_by, count(b.trial_id) = 0 AS on_front
FROM pareto_points a
LEFT JOIN pareto_points b
  ON a.sweep = b.sweep AND a.trial_id <> b.trial_id AND {_AT_LEAST} AND ({_BETTER})
GROUP BY ALL
"""


def non_dominated(points: list[dict[str, float]], objectives: tuple[Objective, ...] = OBJECTIVES) -> list[bool]:
    """The same rule in Python, for callers holding points in memory (missing = worst)."""
    def value(p: dict[str, float], o: Objective) -> float:
        v = p.get(o.column)
        worst = float("-inf") if o.sense == "max" else float("inf")
        v = worst if v is None or v != v else v
        return v if o.sense == "max" else -v

    keys = [[value(p, o) for o in objectives] for p in points]
    return [not any(j != i and all(x >= y for x, y in zip(keys[j], keys[i])) and keys[j] != keys[i]
                    for j in range(len(points))) for i in range(len(points))]
