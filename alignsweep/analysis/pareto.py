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

from alignsweep.evaluators.benchmarks import METRIC_CATALOG, Metric


@dataclass(frozen=True)
class Objective:
    column: str
    sense: str  # max | min
    label: str
    source: Metric | None = None  # the catalog metric it reads (none: the trial's trainable share)


def _objective(m: Metric) -> Objective:
    column = m.pareto or ""
    if column.startswith("abs_"):
        return Objective(column, "min", f"|{m.label}|", m)
    sense = "max" if m.better == "higher" else "min"
    return Objective(column, sense, f"Δ {m.label}" if column.startswith("d_") else m.label, m)


# Every catalog metric that names a Pareto column, in catalog order, then the parameter cost.
OBJECTIVES: tuple[Objective, ...] = (*(_objective(m) for m in METRIC_CATALOG if m.pareto),
                                     Objective("param_share", "min", "trainable share"))
_FROM_DELTAS = [o for o in OBJECTIVES if o.source and o.column.startswith(("d_", "abs_"))]
_ABSOLUTE = [o for o in OBJECTIVES if o.source and not o.column.startswith(("d_", "abs_"))]


def _clean(expr: str) -> str:
    return f"(CASE WHEN isnan({expr}) THEN NULL ELSE {expr} END)"


def _worst(o: Objective, alias: str) -> str:
    return f"coalesce({alias}.{o.column}, {'-1e300' if o.sense == 'max' else '1e300'})"


def _pick(benchmark: str, metric: str, expr: str = "delta") -> str:
    return f"max(CASE WHEN benchmark = '{benchmark}' AND metric = '{metric}' THEN {_clean(expr)} END)"


def _delta_column(o: Objective) -> str:
    m = o.source
    if o.column.startswith("abs_"):
        return (f"max(CASE WHEN benchmark = '{m.benchmark}' AND metric = '{m.name}' "
                f"THEN abs(CASE WHEN isnan(value) THEN 0 ELSE value END) END) AS {o.column}")
    return f"{_pick(m.benchmark, m.name)} AS {o.column}"


def _absolute_cte(o: Objective) -> str:
    """The trial's own value logged at its scored step (or the latest before it)."""
    m = o.source
    return f"""{o.column} AS (
    SELECT m.sweep, m.trial_id, m.value AS {o.column} FROM metrics m JOIN d ON m.sweep = d.sweep AND m.trial_id = d.trial_id
    WHERE m.benchmark = '{m.benchmark}' AND m.metric = '{m.name}' AND m.category = 'overall' AND m.method <> 'base'
      AND m.step <= d.step
    QUALIFY m.step = max(m.step) OVER (PARTITION BY m.sweep, m.trial_id)
)"""


_DELTA_COLUMNS = ",\n           ".join(_delta_column(o) for o in _FROM_DELTAS)
_CTES = "".join(f", {_absolute_cte(o)}" for o in _ABSOLUTE)
_ABS_SELECT = "".join(f", {o.column}.{o.column}" for o in _ABSOLUTE)
_ABS_JOINS = "".join(f"\nLEFT JOIN {o.column} USING (sweep, trial_id)" for o in _ABSOLUTE)

PARETO_POINTS_SQL = f"""
CREATE VIEW pareto_points AS
WITH d AS (
    SELECT sweep, trial_id, any_value(base_model) AS base_model, any_value(family) AS family,
           any_value(method) AS method,
           {_DELTA_COLUMNS},
           max(CASE WHEN benchmark = 'safety' AND metric = 'safe_rate' THEN step END) AS step
    FROM deltas WHERE category = 'overall' GROUP BY sweep, trial_id
){_CTES}
SELECT d.*{_ABS_SELECT},
       t.trainable_params::DOUBLE / nullif(t.total_params, 0) AS param_share,
       t.seed, t.learning_rate, t.stopped_early
FROM d{_ABS_JOINS}
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
