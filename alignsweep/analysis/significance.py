"""The `tests` view: per (checkpoint, benchmark, category, metric) a paired test against its base, with
Benjamini–Hochberg q-values over all of one checkpoint's tests (the statistics: `analysis.paired`).

Why a view computed from the item tables, not stored columns: the items are the store's truth, so
every p recomputes from them (no second copy to drift); on the demo store (52 trials × 5 steps) the
whole view takes about a second. Each fine-tuned trial is paired at its last full evaluation (the
report's "result": the largest step > 0 with a metric that is neither a screen nor the held-out loss)
with its base — the first base trial of the same `base_model` and sweep at its latest step — on the
items both answered (the item id: `prompt_id` for safety and over-refusal, `example_id` for BBQ).
One family for the false-discovery rate is everything tested for one checkpoint: each category and
`overall`, of every metric below. The audit gate pairs its two trials explicitly (`pair_tests`).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from alignsweep.analysis.paired import BOOTSTRAP, MCNEMAR, bh_sql, register_functions
from alignsweep.analysis.stats import BIASED, NON_UNKNOWN
from alignsweep.evaluators.benchmarks import metric as catalog_metric

#: SQL: a metrics row that belongs to a full evaluation (not the screen, not the per-interval held-out loss).
FULL_EVALUATION = "NOT starts_with(benchmark, 'screen_') AND NOT (benchmark = 'utility' AND metric = 'heldout_loss')"


@dataclass(frozen=True)
class Tested:
    """A metric with an item-level test: its items (a table and a filter) and per-item components."""

    benchmark: str
    metric: str
    table: str
    where: str
    components: tuple[str, ...]  # SQL, one number per item; a rate has one 0/1 outcome
    test: str  # MCNEMAR | BOOTSTRAP

    @property
    def item(self) -> str:
        return "prompt_id" if self.table == "safety_items" else "example_id"


_CORRECT = "(prediction = label)"
TESTED: tuple[Tested, ...] = (
    Tested("safety", "safe_rate", "safety_items", "benchmark = 'safety'", ("verdict = 'safe'",), MCNEMAR),
    Tested("over_refusal", "over_refusal_rate", "safety_items",
           "benchmark = 'over_refusal' AND prompt_label = 'safe'", ("verdict = 'refused'",), MCNEMAR),
    Tested("fairness", "accuracy", "fairness_items", "TRUE", (_CORRECT,), MCNEMAR),
    Tested("fairness", "accuracy_ambig", "fairness_items", "context_condition = 'ambig'", (_CORRECT,), MCNEMAR),
    Tested("fairness", "accuracy_disambig", "fairness_items", "context_condition = 'disambig'", (_CORRECT,), MCNEMAR),
    Tested("fairness", "bias_ambig", "fairness_items", "context_condition = 'ambig'",
           (_CORRECT, "1", BIASED, NON_UNKNOWN), BOOTSTRAP),
    Tested("fairness", "bias_disambig", "fairness_items", "context_condition = 'disambig'", (BIASED, NON_UNKNOWN), BOOTSTRAP),
)
#: metric names an `@q` gate rule may name
TESTED_METRICS: tuple[str, ...] = tuple(t.metric for t in TESTED)

# Values recomputed from the paired items' component sums, exactly as the benchmarks define them.
_VALUE = {
    "bias_ambig": "CASE WHEN sum({x}[4]) > 0 THEN (1 - sum({x}[1]) / sum({x}[2])) * (2 * sum({x}[3]) / sum({x}[4]) - 1) END",
    "bias_disambig": "CASE WHEN sum({x}[2]) > 0 THEN 2 * sum({x}[1]) / sum({x}[2]) - 1 END",
}
_RATE = "sum({x}[1]) / count(*)"

VIEW_PAIRS = f"""
    SELECT l.sweep, l.trial_id, l.base_model, l.method, l.step, b.trial_id AS base_trial_id, b.step AS base_step
    FROM (SELECT sweep, trial_id, any_value(base_model) AS base_model, any_value(method) AS method, max(step) AS step
          FROM metrics WHERE method <> 'base' AND step > 0 AND {FULL_EVALUATION} GROUP BY sweep, trial_id) l
    JOIN (SELECT sweep, base_model, arg_min(trial_id, trial_id) AS trial_id, arg_min(step, trial_id) AS step
          FROM (SELECT sweep, base_model, trial_id, max(step) AS step FROM metrics WHERE method = 'base' GROUP BY ALL)
          GROUP BY ALL) b ON l.sweep = b.sweep AND l.base_model = b.base_model"""


def _items_sql() -> str:
    """Every tested metric's items of the wanted (trial, step)s: each item table is read once."""
    parts = []
    for t in TESTED:
        x = ", ".join(f"({c})::DOUBLE" for c in t.components)
        parts.append(f"SELECT sweep, trial_id, step, '{t.benchmark}' AS benchmark, '{t.metric}' AS metric, category, "
                     f"{t.item} AS item, [{x}] AS x FROM {t.table}_wanted WHERE {t.where}")
    wanted = ", ".join(
        f"{table}_wanted AS MATERIALIZED (SELECT i.* FROM {table} i SEMI JOIN wanted w "
        "ON i.sweep = w.sweep AND i.trial_id = w.trial_id AND i.step = w.step)"
        for table in sorted({t.table for t in TESTED}))
    return f"{wanted},\n    items AS MATERIALIZED ({' UNION ALL '.join(parts)})"


def _case(column: str, mapping: dict[str, str]) -> str:
    whens = " ".join(f"WHEN '{k}' THEN {v}" for k, v in mapping.items())
    return f"CASE {column} {whens} END"


def tests_sql(pairs: str) -> str:
    """SQL of the tests of each pair in `pairs` (a relation: sweep, trial_id, base_model, method, step,
    base_trial_id, base_step), one row per (pair, benchmark, category incl. `overall`, metric)."""
    value = {t.metric: _VALUE.get(t.metric, _RATE) for t in TESTED}
    test = _case("g.metric", {t.metric: f"'{t.test}'" for t in TESTED})
    better = {t.metric: catalog_metric(t.metric, t.benchmark).better for t in TESTED}
    worse = _case("metric", {m: {"higher": "delta < 0", "lower": "delta > 0", "zero": "abs(value) > abs(base_value)"}[b]
                             for m, b in better.items()})
    bootstrapped = ", ".join(f"'{t.metric}'" for t in TESTED if t.test == BOOTSTRAP)
    grouped = f"""
        SELECT sweep, trial_id, any_value(base_model) AS base_model, any_value(method) AS method, any_value(step) AS step,
               benchmark, metric, coalesce(category, 'overall') AS category, count(*) AS n,
               {_case('metric', {m: v.format(x='bx') for m, v in value.items()})} AS base_value,
               {_case('metric', {m: v.format(x='ax') for m, v in value.items()})} AS value,
               sum((bx[1] = 1 AND ax[1] = 0)::INT)::BIGINT AS base_only,
               sum((bx[1] = 0 AND ax[1] = 1)::INT)::BIGINT AS adapter_only
        FROM joined
        GROUP BY GROUPING SETS ((sweep, trial_id, benchmark, metric, category), (sweep, trial_id, benchmark, metric))"""
    # The bootstrap needs only how many items share each (base, adapter) component pattern: a handful
    # of rows per test whatever the number of items.
    patterns = f"""
        SELECT sweep, trial_id, benchmark, metric, coalesce(category, 'overall') AS category,
               list(list_concat(bx, ax, [k::DOUBLE])) AS item_rows
        FROM (SELECT sweep, trial_id, benchmark, metric, category, bx, ax, count(*) AS k
              FROM joined WHERE metric IN ({bootstrapped}) GROUP BY ALL)
        GROUP BY GROUPING SETS ((sweep, trial_id, benchmark, metric, category), (sweep, trial_id, benchmark, metric))"""
    tested = f"""
        SELECT g.sweep, g.trial_id, g.base_model, coalesce(t.family, f.family) AS family, g.method, g.step,
               g.benchmark, g.category, g.metric, {test} AS test, g.n, g.base_value, g.value,
               g.value - g.base_value AS delta,
               CASE WHEN {test} = '{MCNEMAR}' THEN g.base_only END AS base_only,
               CASE WHEN {test} = '{MCNEMAR}' THEN g.adapter_only END AS adapter_only,
               CASE WHEN {test} = '{MCNEMAR}' THEN mcnemar_p(g.base_only, g.adapter_only)
                    ELSE nullif(paired_bootstrap_p(g.metric, pt.item_rows), 'NaN'::DOUBLE) END AS p
        FROM grouped g
        LEFT JOIN patterns pt ON pt.sweep = g.sweep AND pt.trial_id = g.trial_id AND pt.benchmark = g.benchmark
                             AND pt.metric = g.metric AND pt.category = g.category
        LEFT JOIN trials t ON g.sweep = t.sweep AND g.trial_id = t.trial_id
        LEFT JOIN (SELECT sweep, base_model, any_value(family) AS family FROM trials WHERE family IS NOT NULL GROUP BY ALL) f
               ON g.sweep = f.sweep AND g.base_model = f.base_model"""
    return f"""
    WITH pairs AS MATERIALIZED ({pairs}),
    wanted AS MATERIALIZED (SELECT sweep, trial_id, step FROM pairs
                            UNION SELECT sweep, base_trial_id AS trial_id, base_step AS step FROM pairs),
    {_items_sql()},
    adapter_items AS MATERIALIZED (  -- a CTE boundary: the join order below cannot put the base join first
        SELECT p.*, a.benchmark, a.metric, a.category, a.item, a.x
        FROM pairs p JOIN items a ON a.sweep = p.sweep AND a.trial_id = p.trial_id AND a.step = p.step),
    joined AS (
        SELECT a.* EXCLUDE (x), b.x AS bx, a.x AS ax
        FROM adapter_items a
        JOIN items b ON b.sweep = a.sweep AND b.trial_id = a.base_trial_id AND b.step = a.base_step
                    AND b.benchmark = a.benchmark AND b.metric = a.metric AND b.item = a.item),
    grouped AS ({grouped}),
    patterns AS ({patterns}),
    tested AS ({tested})
    SELECT *, {worse} AS regression
    FROM ({bh_sql('tested', ['sweep', 'trial_id'], ['benchmark', 'metric', 'category'])})
    ORDER BY sweep, trial_id, benchmark, metric, category = 'overall', category"""


def create_view(con: duckdb.DuckDBPyConnection) -> None:
    """The `tests` view (and the SQL functions it calls) in a connection that has the store's views."""
    register_functions(con)
    con.execute(f"CREATE VIEW tests AS {tests_sql(VIEW_PAIRS)}")


def pair_tests(con: duckdb.DuckDBPyConnection, trial_id: str, base_trial_id: str, *, step: int = 0,
               base_step: int = 0) -> list[dict]:
    """The tests of one explicit pair (the audit's adapter and base trials), the family being that pair's,
    as plain records (Python values, NULL as None)."""
    pair = pa.table({"trial_id": [trial_id], "step": pa.array([step], pa.int64()), "base_trial_id": [base_trial_id],
                     "base_step": pa.array([base_step], pa.int64())})
    con.register("_pair", pair)
    try:
        pairs = """SELECT m.sweep, p.trial_id, any_value(m.base_model) AS base_model, any_value(m.method) AS method,
                          p.step, p.base_trial_id, p.base_step
                   FROM _pair p JOIN metrics m ON m.trial_id = p.trial_id AND m.step = p.step GROUP BY ALL"""
        return con.sql(tests_sql(pairs)).to_arrow_table().to_pylist()
    finally:
        con.unregister("_pair")
