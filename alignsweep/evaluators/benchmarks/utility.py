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
from alignsweep.inference.loglik import score_choices

BENCHMARK = "utility"
OVERALL = "overall"


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
            choices = tuple(str(c) for c in row["choices"])
            question = UtilityQuestion(str(row.get("question_id") or f"{Path(where).stem}-{number}"),
                                       str(row.get("category") or "general"), str(row["question"]), choices,
                                       int(row["label"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}:{number}: needs question, choices (a list) and label (an int): {exc}") from None
        if len(choices) < 2 or not 0 <= question.label < len(choices):
            raise InputError(f"{where}:{number}: label {question.label} is not one of {len(choices)} choices")
        out.append(question)
    if not out:
        raise InputError(f"{where}: no utility questions")
    return out


def task_accuracy_metrics(model: Any, tokenizer: Any, questions: Sequence[UtilityQuestion], *,
                          batch_size: int = 16) -> list[dict[str, Any]]:
    """`metrics` rows: task_accuracy per category and overall (the choice with the highest log-likelihood)."""
    from alignsweep.chat import render_prompt

    requests, spans = [], []
    for q in questions:
        context = render_prompt(tokenizer, [{"role": "user", "content": q.question}])
        spans.append(len(requests))
        requests.extend((context, choice) for choice in q.choices)
    scores = score_choices(model, tokenizer, requests, batch_size=batch_size)
    hits: dict[str, list[bool]] = {}
    for q, start in zip(questions, spans):
        lls = [s.loglik for s in scores[start:start + len(q.choices)]]
        best = max(range(len(lls)), key=lambda i: (lls[i], -i))
        hits.setdefault(q.category, []).append(best == q.label)
    rows = []
    for category in [*sorted(hits), OVERALL]:
        flags = [h for g in hits.values() for h in g] if category == OVERALL else hits[category]
        rows.append({"benchmark": BENCHMARK, "category": category, "metric": "task_accuracy",
                     "value": sum(flags) / len(flags) if flags else float("nan"), "n": len(flags)})
    return rows
