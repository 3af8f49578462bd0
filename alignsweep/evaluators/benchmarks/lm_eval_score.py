"""Score an `LmEvalTask` (see `lm_eval_task`) as lm-evaluation-harness 0.4.13 scores `multiple_choice`.

Per document, every choice is one (context, target_delimiter + choice) request to
`inference.loglik.score_choices` (the project's lm-eval-exact log-likelihood). As lm-eval's
`_encode_pair` does, whitespace at the end of the context is moved to the front of the continuation
before encoding. `prediction` = argmax of the log-likelihoods, `prediction_norm` = argmax of
log-likelihood / len(choice) — lm-eval 0.4.13's `acc_norm` divides by the choice's length in
characters (its `len(str)`), without the delimiter (its byte-length variant is `acc_bytes`, not
supported here). Ties go to the first choice, as `numpy.argmax` does.

`task_metrics` is a pure function of the per-item rows, so the `metrics` rows recompute from the
stored `task_items` alone. `TaskBenchmark` makes a task file a plug-in benchmark (`evaluation.tasks`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Mapping

import numpy as np

from alignsweep.evaluators.benchmarks.base import Metric, ScoringContext, add_metrics
from alignsweep.evaluators.benchmarks.lm_eval_task import LmEvalTask, TaskDoc, load_task
from alignsweep.inference.loglik import score_choices

OVERALL = "overall"
TASK_ITEMS = "task_items"  # the store table (`store.schemas`) its per-item rows go to


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


class TaskBenchmark:
    """One lm-eval task file as a benchmark: its docs are the items, `task_items` the item table, and
    its `acc` / `acc_norm` the metrics (benchmark = the task's name). Not in the global registry: a
    spec lists its task files (`evaluation.tasks`), and each evaluator process builds these from it."""

    item_table = TASK_ITEMS
    item_id = "doc_id"

    def __init__(self, path: str, cwd: str | None = None) -> None:
        self.task = load_task(path, cwd=cwd)
        self.name = self.task.name
        labels = {"acc": "accuracy", "acc_norm": "accuracy (length-normalised)"}
        self.metrics = tuple(Metric(m, self.name, f"{self.name} {labels[m]}", f"{self.name} {m}", "higher")
                             for m in self.task.metrics)
        add_metrics(*self.metrics)

    def enabled(self, spec: Any) -> bool:
        return True

    def load(self, spec: Any) -> list[TaskDoc]:
        return list(self.task.docs)

    def score(self, ctx: ScoringContext, items: Any, spec: Any) -> list[dict[str, Any]]:
        subset = self.task if len(items) == len(self.task.docs) else replace(self.task, docs=tuple(items))
        return score_task(ctx.model, ctx.tokenizer, subset)

    def summarise(self, rows: Any) -> list[dict[str, Any]]:
        return task_metrics(rows, benchmark=self.name, metrics=self.task.metrics)
