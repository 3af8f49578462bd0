"""Score an `LmEvalTask` (see `lm_eval_task`) as lm-evaluation-harness 0.4.13 scores `multiple_choice`.

Per document, every choice is one (context, target_delimiter + choice) request to
`inference.loglik.score_choices` (the project's lm-eval-exact log-likelihood). As lm-eval's
`_encode_pair` does, whitespace at the end of the context is moved to the front of the continuation
before encoding. `prediction` = argmax of the log-likelihoods, `prediction_norm` = argmax of
log-likelihood / len(choice) — lm-eval 0.4.13's `acc_norm` divides by the choice's length in
characters (its `len(str)`), without the delimiter (its byte-length variant is `acc_bytes`, not
supported here). Ties go to the first choice, as `numpy.argmax` does.

`task_metrics` is a pure function of the per-item rows, so the `metrics` rows recompute from the
stored `task_items` alone. `TASK_ITEMS_SCHEMA` is the proposed Arrow schema of that table.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa

from alignsweep.evaluators.benchmarks.lm_eval_task import LmEvalTask
from alignsweep.inference.loglik import score_choices

OVERALL = "overall"
TASK_ITEMS = "task_items"
#: Proposed store table: one row per (trial, step, task, document); `trial_id`/`step` added by the writer.
TASK_ITEMS_SCHEMA = pa.schema(
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
TASK_ITEMS_ROW_KEYS = ("task", "doc_id")


def task_requests(task: LmEvalTask) -> list[tuple[str, str]]:
    """Every (context, continuation) pair, documents in order, choices side by side (prefix sharing)."""
    requests = []
    for doc in task.docs:
        context = doc.context.rstrip()
        moved = doc.context[len(context):]  # lm-eval moves trailing whitespace into the continuation
        requests.extend((context, moved + task.target_delimiter + choice) for choice in doc.choices)
    return requests


def predictions(logliks: list[float], choices: Iterable[str]) -> tuple[int, int]:
    """(argmax loglik, argmax loglik / len(choice)), exactly as lm-eval's `process_results` does."""
    lls = np.array(logliks, dtype=np.float64)
    lengths = np.array([float(len(c)) for c in choices])
    with np.errstate(divide="ignore", invalid="ignore"):
        return int(np.argmax(lls)), int(np.argmax(lls / lengths))


def score_task(model: Any, tokenizer: Any, task: LmEvalTask, *, batch_size: int = 16,
               method: str = "shared_prefix") -> list[dict[str, Any]]:
    """`task_items` rows (without trial_id/step), one per document, in document order."""
    scores = score_choices(model, tokenizer, task_requests(task), batch_size=batch_size, method=method)
    rows, start = [], 0
    for doc in task.docs:
        chunk = scores[start:start + len(doc.choices)]
        start += len(doc.choices)
        lls = [s.loglik for s in chunk]
        pred, pred_norm = predictions(lls, doc.choices)
        rows.append({"task": task.name, "doc_id": doc.doc_id, "category": doc.category, "target": doc.target,
                     "prediction": pred, "prediction_norm": pred_norm, "loglikelihoods": lls,
                     "truncated": any(s.truncated for s in chunk)})
    return rows


def task_metrics(items: Iterable[Mapping[str, Any]], *, benchmark: str | None = None,
                 metrics: Iterable[str] = ("acc", "acc_norm")) -> list[dict[str, Any]]:
    """`metrics` rows: each metric per category (sorted), then `overall` (all items; lm-eval's number).

    `benchmark` defaults to the items' `task`. acc: prediction == target; acc_norm: prediction_norm ==
    target. A category holds at least one item, so no value is undefined (no items: no rows).
    """
    rows = list(items)
    if not rows:
        return []
    name = benchmark or str(rows[0]["task"])
    columns = {"acc": "prediction", "acc_norm": "prediction_norm"}
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r["category"]), []).append(r)
    out = []
    for category in [*sorted(groups), OVERALL]:
        members = rows if category == OVERALL else groups[category]
        for metric in metrics:
            hits = sum(int(r[columns[metric]]) == int(r["target"]) for r in members)
            out.append({"benchmark": name, "category": category, "metric": metric,
                        "value": hits / len(members), "n": len(members)})
    return out


def evaluate_task(model: Any, tokenizer: Any, task: LmEvalTask, **kwargs: Any) -> tuple[list[dict[str, Any]],
                                                                                      list[dict[str, Any]]]:
    """(`task_items` rows, `metrics` rows) for one model and task; kwargs go to `score_task`."""
    items = score_task(model, tokenizer, task, **kwargs)
    return items, task_metrics(items, benchmark=task.name, metrics=task.metrics)
