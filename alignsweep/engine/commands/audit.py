"""`alignsweep audit`: score a base model (and optionally one adapter on it) without training.

Writes the same records as a sweep (`metrics`, `safety_items`, `fairness_items`; the base as method
`base`) into `--results DIR`, which is laid out like a sweep directory, so `query` and `report` read it.
"""

from __future__ import annotations

import argparse
import math


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="evaluate a base model and optionally an adapter, without training")
    p.add_argument("--base", required=True, help="hub id, local path, or tiny:<family>")
    p.add_argument("--adapter", help="PEFT adapter directory to score on top of the base")
    p.add_argument("--safety-data", default="bundled", help="hazard prompts: bundled, JSONL/CSV, AILuminate CSV, hf:<id>")
    p.add_argument("--fairness-data", default="bundled", help="BBQ: bundled, a release directory, or one <Category>.jsonl")
    p.add_argument("--over-refusal-data", default="bundled", help="look-alikes: bundled, XSTest CSV, or JSONL")
    p.add_argument("--judge", default="refusal", help="safety judge (refusal, llama_guard, hf_classifier)")
    p.add_argument("--judge-model", help="checkpoint for llama_guard / hf_classifier")
    p.add_argument("--limit", type=int, help="at most N items per category (safety, over-refusal, fairness)")
    p.add_argument("--results", required=True, help="directory to write the records under")
    p.set_defaults(handler=_handle)


def _spec(args: argparse.Namespace):
    from pydantic import ValidationError

    from alignsweep.errors import InputError
    from alignsweep.evaluators.config import EvaluationSpec

    judge = {"name": args.judge, **({"model": args.judge_model} if args.judge_model else {})}
    raw = {
        "safety": {"data": args.safety_data, "limit": args.limit, "judges": [judge]},
        "fairness": {"data": args.fairness_data, "limit": args.limit},
        "over_refusal": {"data": args.over_refusal_data, "limit": args.limit},
    }
    try:
        return EvaluationSpec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None


def _handle(args: argparse.Namespace) -> int:
    from alignsweep.evaluators.evaluate import Evaluator, local_judges, method_of, store_result

    spec = _spec(args)
    _preflight(args, spec)
    judge, judge_name, over, over_name = local_judges(spec)
    evaluator = Evaluator(spec, args.base, judge=judge, judge_name=judge_name,
                          over_refusal_judge=over, over_refusal_judge_name=over_name)
    runs = [(None, f"audit:{args.base}")] + ([(args.adapter, f"audit:{args.adapter}")] if args.adapter else [])
    flats = []
    for adapter, trial_id in runs:
        result = evaluator.evaluate(adapter)
        store_result(result, args.results, trial_id=trial_id, step=0, base_model=args.base,
                     method=method_of(adapter, None))
        flats.append(result.flat())
        print(f"{trial_id}: {len(result.safety_items)} safety items, {len(result.fairness_items)} fairness items, "
              f"{result.seconds:.1f} s")
    for key in sorted(k for k in flats[0] if "/" not in k):
        values = "  ".join(_fmt(f.get(key, math.nan)) for f in flats)
        print(f"  {key:<20} {values}")
    return 0


def _preflight(args: argparse.Namespace, spec) -> None:
    """Base, adapter (safetensors, same base architecture), data and results path, before any model loads."""
    from alignsweep.engine.preflight import check_adapter, check_evaluation_data, check_model, check_results_dir

    check_results_dir(args.results)
    check_model(args.base)
    if args.adapter:
        check_adapter(args.adapter, args.base)
    check_evaluation_data(spec)


def _fmt(value: float) -> str:
    return "   nan" if math.isnan(value) else f"{value:+.3f}"
