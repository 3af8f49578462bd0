"""Utility: does the fine-tuned model still do the job? Task accuracy on bundled benign questions.

Why: safety and fairness alone reward a model that has stopped working; a third axis makes the
trade-off three-way. Each question is multiple choice, scored like BBQ — the per-choice
log-likelihood of the assistant's reply after the chat-formatted question (lm-eval exact, through
`score_choices`) — so the number needs no generation and no judge. The held-out loss on the tuning
data is the other half of utility; the trial computes it (it owns the tuning data) and it is stored
beside this one under benchmark `utility`, metric `heldout_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from alignsweep.errors import InputError
from alignsweep.data.rows import bundled_path, read_rows
from alignsweep.evaluators.benchmarks.base import Metric, ScoringContext, add_metrics, rate_rows, register
from alignsweep.evaluators.datasets import limit_per_category
from alignsweep.inference.loglik import score_choices

BENCHMARK = "utility"


@dataclass(frozen=True)
class UtilityQuestion:
    question_id: str
    category: str
    question: str
    choices: tuple[str, ...]
    label: int


def load_utility_questions(source: str = "bundled") -> list[UtilityQuestion]:
    """Questions from `bundled` (`alignsweep/data/utility_questions.jsonl`), a JSONL file or an `hf:` id;
    each row: question, choices (a list), label (the right choice's index), optional category."""
    where, rows = read_rows(str(bundled_path("utility_questions.jsonl")) if source == "bundled" else source)
    out: list[UtilityQuestion] = []
    for number, row in rows:
        try:
            if not isinstance(row.get("choices"), list) or isinstance(row.get("label"), bool):
                raise TypeError("choices must be a list, label a number")
            choices = tuple(str(c) for c in row["choices"])
            question = UtilityQuestion(str(row.get("question_id") or f"{Path(where).stem}-{number}"),
                                       str(row.get("category") or "general"), str(row["question"]), choices,
                                       int(row["label"]))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise InputError(f"{where}:{number}: needs question, choices (a list) and label (an int): {exc}") from None
        if len(choices) < 2 or not 0 <= question.label < len(choices):
            raise InputError(f"{where}:{number}: label {question.label} is not one of {len(choices)} choices")
        out.append(question)
    if not out:
        raise InputError(f"{where}: no utility questions")
    return out


def score_questions(model: Any, tokenizer: Any, questions: Sequence[UtilityQuestion], *,
                    batch_size: int = 16) -> list[dict[str, Any]]:
    """One row per question: the choice with the highest log-likelihood after the chat-formatted question."""
    from alignsweep.chat import render_prompt

    requests, spans = [], []
    for q in questions:
        context = render_prompt(tokenizer, [{"role": "user", "content": q.question}])
        spans.append(len(requests))
        requests.extend((context, choice) for choice in q.choices)
    scores = score_choices(model, tokenizer, requests, batch_size=batch_size)
    rows = []
    for q, start in zip(questions, spans):
        lls = [s.loglik for s in scores[start:start + len(q.choices)]]
        best = max(range(len(lls)), key=lambda i: (lls[i], -i))
        rows.append({"question_id": q.question_id, "category": q.category, "label": q.label, "prediction": best,
                     "loglikelihoods": lls})
    return rows


def task_accuracy_metrics(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`metrics` rows: task_accuracy per category and overall."""
    return rate_rows(rows, BENCHMARK, "task_accuracy", lambda r: r["prediction"] == r["label"])


class UtilityBenchmark:
    """Task accuracy on benign multiple-choice questions; its items are not stored (no item table)."""

    name = BENCHMARK
    item_table = None
    item_id = "question_id"
    metrics = (Metric("task_accuracy", BENCHMARK, "task accuracy", "task acc", "higher", pareto="d_task_accuracy"),)

    def enabled(self, spec: Any) -> bool:
        return spec.utility.enabled

    def load(self, spec: Any) -> list[UtilityQuestion]:
        return limit_per_category(load_utility_questions(spec.utility.data), spec.utility.limit)

    def score(self, ctx: ScoringContext, items: Sequence[UtilityQuestion], spec: Any) -> list[dict[str, Any]]:
        return score_questions(ctx.model, ctx.tokenizer, items)

    def summarise(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return task_accuracy_metrics(rows)


register(UtilityBenchmark())
#: Computed by the trial (it owns the tuning data) and stored beside task accuracy.
add_metrics(Metric("heldout_loss", BENCHMARK, "held-out loss", "ho loss", "lower", pareto="heldout_loss"))
