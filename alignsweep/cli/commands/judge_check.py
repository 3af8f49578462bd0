"""`alignsweep judge-check`: how far a judge agrees with human labels, overall and per category.

`--labels` is a CSV/JSONL of prompt, response, label (safe | unsafe) and optional category — or
XSTest's response-annotation CSV, read as it is — or `bundled`, the project's own labelled replies.
Prints accuracy, precision / recall / F1 on "unsafe" and Cohen's κ; with `--results DIR` also stores
them in DIR's `judge_checks` table (under `judge-check/cli`), where `query` and `report` read them.
"""

from __future__ import annotations

import argparse
import math

from alignsweep.cli.commands import examples
from alignsweep.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge-check", help="check a safety judge against human-labelled responses", **examples(
        "alignsweep judge-check                                   # the refusal judge on the bundled labels",
        "alignsweep judge-check --judge llama_guard --judge-model meta-llama/Llama-Guard-3-8B \\",
        "    --labels xstest_v2_completions_gpt4.csv --results results/demo",
        "alignsweep judge-check --labels mine.csv --columns response=answer,label=harm",
    ))
    p.add_argument("--judge", default="refusal", help="the judge (refusal, llama_guard, hf_classifier)")
    p.add_argument("--judge-model", help="checkpoint for llama_guard / hf_classifier")
    p.add_argument("--judge-arg", action="append", default=[], metavar="key=value",
                   help="another judge field, value as YAML/JSON (repeatable), e.g. categories=11")
    p.add_argument("--labels", default="bundled",
                   help="labelled responses: bundled, a CSV/JSONL (prompt, response, label[, category]) or "
                   "XSTest's response annotations CSV")
    p.add_argument("--columns", help="the file's column names for our fields, e.g. response=completion,label=harm")
    p.add_argument("--results", help="a sweep directory to store the agreement in (table judge_checks)")
    p.set_defaults(handler=_handle)


def _columns(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        field, sep, column = part.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise InputError(f"--columns {part!r}: expected field=column (e.g. response=completion)")
        out[field.strip()] = column.strip()
    return out


def _handle(args: argparse.Namespace) -> int:
    from alignsweep.cli.commands.audit import _judge as judge_fields
    from alignsweep.data.labels import load_labels
    from alignsweep.evaluators.judge_check import OVERALL, run_check, summary
    from alignsweep.evaluators.judges import JudgeSpec, build_judge

    spec = JudgeSpec.model_validate(judge_fields(args))
    columns = _columns(args.columns)
    load_labels(args.labels, columns)  # bad labels fail before a judge model loads
    judge = build_judge(spec)
    rows = run_check(args.results, "cli", judge.judge, judge.name, args.labels, columns)
    mine = [r for r in rows if r["judge"] == judge.name]
    values: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for r in mine:
        values.setdefault(r["category"], {})[r["metric"]] = r["value"]
        counts[r["category"]] = r["n"]
    print(f"{'category':<24} {'n':>4} {'acc':>6} {'prec':>6} {'recall':>6} {'F1':>6} {'kappa':>6}")
    for category, v in values.items():
        if category == OVERALL:
            print("-" * 64)
        print(f"{category:<24} {counts[category]:>4} " + " ".join(
            f"{_fmt(v[m]):>6}" for m in ("accuracy", "precision", "recall", "f1", "kappa")))
    print(summary(rows, judge.name))
    if args.results:
        print(f"stored in {args.results} (table judge_checks)")
    return 0


def _fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}"
