"""How far a judge can be trusted: its verdicts on human-labelled responses, as agreement numbers.

Safety numbers are the judge's numbers, so every sweep checks its safety judge once at start (on
`safety.labels`, the bundled set by default) and `alignsweep judge-check` checks any judge on any
labelled set. "Positive" is unsafe: a verdict that is not `safe` (unparsed included, as in
`safe_rate`) predicts unsafe. Per category and overall: accuracy, precision / recall / F1 on unsafe,
Cohen's κ, and the share of unparsed verdicts. An ensemble is checked as a whole and member by member
(from the votes each combined verdict keeps).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from alignsweep.data.labels import UNSAFE, LabelledResponse
from alignsweep.evaluators.benchmarks.safety import category_sort_key
from alignsweep.evaluators.judges import SAFE, UNPARSED, Verdict

OVERALL = "overall"
METRICS = ("accuracy", "precision", "recall", "f1", "kappa", "unparsed_rate")


def check_name(role: str) -> str:
    """The `trial_id` a check is stored under: `judge-check/<role>` (safety, over_refusal, or cli)."""
    return f"judge-check/{role}"


def agreement(labels: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Accuracy, precision/recall/F1 on unsafe, Cohen's κ and the unparsed share of (label, verdict)
    pairs; a value with no denominator (no unsafe predictions: precision) is NaN."""
    n = len(labels)
    if n == 0:
        return {m: math.nan for m in METRICS}
    truth = [lab == UNSAFE for lab in labels]
    guess = [v != SAFE for v in predicted]
    tp = sum(t and g for t, g in zip(truth, guess))
    fp = sum(g and not t for t, g in zip(truth, guess))
    fn = sum(t and not g for t, g in zip(truth, guess))
    tn = n - tp - fp - fn
    accuracy = (tp + tn) / n
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    expected = ((tp + fp) * (tp + fn) + (tn + fn) * (tn + fp)) / (n * n)
    kappa = (accuracy - expected) / (1 - expected) if expected < 1 else math.nan
    unparsed = sum(v == UNPARSED for v in predicted) / n
    return {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1, "kappa": kappa,
            "unparsed_rate": unparsed}


def agreement_rows(items: Sequence[LabelledResponse], verdicts: Sequence[str], judge: str,
                   source: str) -> list[dict[str, Any]]:
    """`judge_checks` rows: every metric per category (sorted), then overall, each with its n."""
    by_category: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_category.setdefault(item.category, []).append(i)
    rows = []
    for category in sorted(by_category, key=category_sort_key) + [OVERALL]:
        idx = range(len(items)) if category == OVERALL else by_category[category]
        values = agreement([items[i].label for i in idx], [verdicts[i] for i in idx])
        rows += [{"judge": judge, "labels": source, "category": category, "metric": m, "value": values[m],
                  "n": len(idx)} for m in METRICS]
    return rows


def check_judge(judge: Callable[[list[tuple[str, str]]], list[Verdict]], judge_name: str,
                items: Sequence[LabelledResponse], source: str) -> list[dict[str, Any]]:
    """Judge every labelled response once; rows for the judge and, for an ensemble, each member."""
    verdicts = judge([(it.prompt, it.response) for it in items])
    rows = agreement_rows(items, [v.verdict for v in verdicts], judge_name, source)
    members = [name for name, _ in verdicts[0].votes] if verdicts and verdicts[0].votes else []
    for k, member in enumerate(members):
        rows += agreement_rows(items, [v.votes[k][1] for v in verdicts], member, source)
    return rows


def summary(rows: Sequence[dict[str, Any]], judge: str | None = None) -> str:
    """`refusal: κ 0.71, acc 86%, recall 80% on 77 labelled responses (bundled)` for one judge's overall rows."""
    mine = [r for r in rows if r["category"] == OVERALL and (judge is None or r["judge"] == judge)]
    if not mine:
        return ""
    name, source = mine[0]["judge"], mine[0].get("labels") or "labels"
    values = {r["metric"]: r["value"] for r in mine if r["judge"] == name}
    n = mine[0]["n"]
    return (f"{name}: κ {_num(values.get('kappa'))}, acc {_pct(values.get('accuracy'))}, "
            f"recall {_pct(values.get('recall'))}, precision {_pct(values.get('precision'))} "
            f"on {n} labelled responses ({source})")


def _num(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.0f}%"


def run_check(results_dir: str | None, role: str, judge: Callable[[list[tuple[str, str]]], list[Verdict]],
              judge_name: str, source: str, columns: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Load `source`, check the judge, and (with `results_dir`) store the rows as `judge-check/<role>`."""
    from alignsweep.data.labels import describe, load_labels
    from alignsweep.evaluators.records import persist

    items = load_labels(source, columns)
    rows = check_judge(judge, judge_name, items, describe(source))
    if results_dir is not None:
        persist(results_dir, "judge_checks", rows, trial_id=check_name(role), step=0)
    return rows
