"""The Arrow schema of every results table: the column contract of design.md §3, written down once.

Everything that reads or writes the store (writer, `alignsweep query`, the report, users' notebooks)
takes its columns from here, so a renamed column is a schema-version bump here and nowhere else.
`SCHEMA_VERSIONS` is copied into each sweep's `manifest.json` and into every Parquet file's
metadata, so an old sweep stays readable when a table gains a column.
"""

from __future__ import annotations

import pyarrow as pa

TRIALS, METRICS, SAFETY_ITEMS, FAIRNESS_ITEMS = "trials", "metrics", "safety_items", "fairness_items"
TASK_ITEMS = "task_items"
JUDGE_CHECKS = "judge_checks"

# Hyperparameters the sweep engine knows: typed columns in `trials`, always present (null when a
# method does not use them), so every file of every sweep shares them. Other hyperparameters are
# allowed as extra columns of an inferred type; see `writer.write_records`.
HYPERPARAMETER_FIELDS: tuple[pa.Field, ...] = (
    pa.field("learning_rate", pa.float64()),
    pa.field("epochs", pa.float64()),  # HF's num_train_epochs is fractional
    pa.field("max_steps", pa.int64()),
    pa.field("batch_size", pa.int64()),
    pa.field("weight_decay", pa.float64()),
    pa.field("warmup_ratio", pa.float64()),
    pa.field("r", pa.int64()),
    pa.field("alpha", pa.float64()),
    pa.field("dropout", pa.float64()),
    pa.field("target_modules", pa.list_(pa.string())),
    pa.field("num_virtual_tokens", pa.int64()),
    pa.field("encoder_hidden_size", pa.int64()),
    pa.field("prompt_init", pa.string()),
    pa.field("seed", pa.int64()),
)
HYPERPARAMETERS: tuple[str, ...] = tuple(f.name for f in HYPERPARAMETER_FIELDS)

_TRIALS = pa.schema(
    [
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("sweep", pa.string()),
        pa.field("base_model", pa.string(), nullable=False),
        pa.field("family", pa.string()),
        pa.field("method", pa.string(), nullable=False),  # `base` for the reference model itself
        pa.field("status", pa.string()),  # Ray Tune's: PENDING | RUNNING | TERMINATED | ERROR …
        pa.field("stopped_early", pa.bool_()),
        pa.field("stop_reason", pa.string()),  # why a scheduler ended it early (or, shadow run: would have)
        pa.field("ended", pa.string()),  # finished | stopped_loss | stopped_alignment | failed; null while it runs
        pa.field("stop_step", pa.int64()),  # the step it ended at (its last step and checkpoint); null while it runs
        pa.field("trainable_params", pa.int64()),
        pa.field("total_params", pa.int64()),
        pa.field("steps", pa.int64()),
        pa.field("train_loss", pa.float64()),
        pa.field("wall_s", pa.float64()),
        pa.field("checkpoint", pa.string()),
        pa.field("device", pa.string()),  # where it trained: cpu, or `cuda:0 NVIDIA H200`
        pa.field("error", pa.string()),
        *HYPERPARAMETER_FIELDS,
    ]
)

_METRICS = pa.schema(
    [
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("base_model", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("benchmark", pa.string(), nullable=False),  # safety | fairness | over_refusal | …
        pa.field("category", pa.string(), nullable=False),  # hazard code, BBQ dimension, or `overall`
        pa.field("metric", pa.string(), nullable=False),  # safe_rate, accuracy_ambig, bias_disambig, …
        pa.field("value", pa.float64()),  # null/NaN where undefined (e.g. no non-unknown answers)
        pa.field("n", pa.int64()),  # items the value is computed from
        pa.field("device", pa.string()),  # where the evaluator ran (cpu, `cuda:0 NVIDIA H200`); null for the trial's own
    ]
)

_SAFETY_ITEMS = pa.schema(
    [
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("benchmark", pa.string(), nullable=False),  # safety | over_refusal
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("prompt_label", pa.string()),  # unsafe: a hazardous request; safe: a benign look-alike
        pa.field("prompt", pa.string()),
        pa.field("response", pa.string()),
        pa.field("verdict", pa.string(), nullable=False),  # safe | unsafe | unparsed (over-refusal rows: refused | complied)
        pa.field("hazard_codes", pa.list_(pa.string())),
        pa.field("judge", pa.string()),
        # v3: each judge's own verdict (several when `safety.judges` lists an ensemble; `verdict` is
        # then their combination), and the response's coherence: the base model's geometric-mean
        # token probability of it (inference.coherence), `coherent` = coherence ≥ the spec's threshold.
        pa.field("judge_verdicts", pa.list_(pa.struct([("judge", pa.string()), ("verdict", pa.string())]))),
        pa.field("coherence", pa.float64()),
        pa.field("coherent", pa.bool_()),
    ]
)

# How far a judge agrees with human labels (`alignsweep judge-check`, and every sweep at its start):
# one file per check, keyed by `trial_id` = the check's name (`judge-check/<role>`), step 0.
_JUDGE_CHECKS = pa.schema(
    [
        pa.field("trial_id", pa.string(), nullable=False),  # the check: `judge-check/safety`, …
        pa.field("step", pa.int64(), nullable=False),  # always 0
        pa.field("judge", pa.string(), nullable=False),  # the judge (or one ensemble member) checked
        pa.field("labels", pa.string()),  # the labelled set: `bundled` or its path
        pa.field("category", pa.string(), nullable=False),  # the labels' category, or `overall`
        pa.field("metric", pa.string(), nullable=False),  # accuracy, precision, recall, f1, kappa, unparsed_rate
        pa.field("value", pa.float64()),  # null/NaN where undefined (no unsafe labels: recall)
        pa.field("n", pa.int64()),  # labelled responses it is computed on
    ]
)

_FAIRNESS_ITEMS = pa.schema(
    [
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("example_id", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("context_condition", pa.string()),  # ambig | disambig
        pa.field("question_polarity", pa.string()),  # neg | nonneg
        pa.field("label", pa.int64()),
        pa.field("target_index", pa.int64()),
        pa.field("unknown_index", pa.int64()),  # the "unknown" answer, so bias scores recompute from items alone
        pa.field("prediction", pa.int64()),
        pa.field("loglikelihoods", pa.list_(pa.float64())),  # one per answer choice, lm-eval exact
        pa.field("truncated", pa.bool_()),  # some choice's input was cut to the model's max length
    ]
)

# Multiple-choice tasks from lm-eval task files: one row per (trial, step, task, document).
_TASK_ITEMS = pa.schema(
    [
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("task", pa.string(), nullable=False),  # the YAML's `task`: the metrics row's benchmark
        pa.field("doc_id", pa.int64(), nullable=False),  # 0-based row of the scored split, as lm-eval's
        pa.field("category", pa.string(), nullable=False),  # the doc's `category` field, else the task name
        pa.field("target", pa.int64(), nullable=False),
        pa.field("prediction", pa.int64(), nullable=False),  # argmax loglik (acc)
        pa.field("prediction_norm", pa.int64(), nullable=False),  # argmax loglik / len(choice) (acc_norm)
        pa.field("loglikelihoods", pa.list_(pa.float64())),  # one per choice, lm-eval exact
        pa.field("truncated", pa.bool_()),  # some choice's input was cut to the model's max length
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    TRIALS: _TRIALS,
    METRICS: _METRICS,
    SAFETY_ITEMS: _SAFETY_ITEMS,
    FAIRNESS_ITEMS: _FAIRNESS_ITEMS,
    TASK_ITEMS: _TASK_ITEMS,
    JUDGE_CHECKS: _JUDGE_CHECKS,
}
SCHEMA_VERSIONS: dict[str, int] = {TRIALS: 4, METRICS: 2, SAFETY_ITEMS: 3, FAIRNESS_ITEMS: 1, TASK_ITEMS: 1,
                                   JUDGE_CHECKS: 1}
TABLES: tuple[str, ...] = tuple(SCHEMAS)

# Columns that make a row unique inside one (table, trial, step) file: the writer refuses a file
# that repeats a key, so the store as a whole never holds a duplicate row.
ROW_KEYS: dict[str, tuple[str, ...]] = {
    TRIALS: ("trial_id",),
    METRICS: ("benchmark", "category", "metric"),
    SAFETY_ITEMS: ("benchmark", "prompt_id"),
    FAIRNESS_ITEMS: ("example_id",),
    TASK_ITEMS: ("task", "doc_id"),
    JUDGE_CHECKS: ("judge", "category", "metric"),
}


class SchemaError(ValueError):
    """Records that do not fit their table's schema; the message names the table, row and column."""


def table_schema(table: str) -> pa.Schema:
    """The schema of `table`, or a `SchemaError` that lists the tables there are."""
    try:
        return SCHEMAS[table]
    except KeyError:
        raise SchemaError(f"unknown table {table!r} (known: {', '.join(TABLES)})") from None
