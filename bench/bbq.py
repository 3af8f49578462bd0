"""BBQ scoring: each context encoded once and all its choices scored from its KV cache, batched,
vs one forward per (context, choice) — lm-eval's log-likelihood either way (design §4).

Also shows the reference path batched without prefix sharing, to separate the two gains. The ratio
only counts when predictions are identical and log-likelihoods agree to 1e-4.
"""

from __future__ import annotations

import statistics

from bench._common import median_pair, seconds, setup_torch, table, tiny, verdict

GOAL = 3.0
N_ITEMS = 120


def main() -> float:
    from alignsweep.evaluators.datasets import load_bbq
    from alignsweep.evaluators.benchmarks.bbq import score_bbq

    setup_torch()
    items = load_bbq("bundled")
    items = items[:: max(1, len(items) // N_ITEMS)][:N_ITEMS]
    rows, ratios = [], []
    for family in ("llama", "qwen2", "mistral", "gemma"):
        model, tok, _ = tiny(family)
        for extra in (False, True):
            ref = score_bbq(model, tok, items, extra_unknowns=extra, batch_size=1, method="reference")
            fast = score_bbq(model, tok, items, extra_unknowns=extra, batch_size=64)
            same_pred = [r["prediction"] for r in ref] == [f["prediction"] for f in fast]
            max_diff = max(abs(a - b) for r, f in zip(ref, fast) for a, b in zip(r["loglikelihoods"], f["loglikelihoods"]))
            base_s, fast_s = median_pair(
                lambda: score_bbq(model, tok, items, extra_unknowns=extra, batch_size=1, method="reference"),
                lambda: score_bbq(model, tok, items, extra_unknowns=extra, batch_size=64),
            )
            batched_s = seconds(lambda: score_bbq(model, tok, items, extra_unknowns=extra, batch_size=64,
                                                  method="reference"))
            ok = same_pred and max_diff <= 1e-4
            ratio = base_s / fast_s if ok else 0.0
            ratios.append(ratio)
            choices = sum(len(f["loglikelihoods"]) for f in fast)
            rows.append([f"tiny:{family}", "3 + 10 unknowns" if extra else "3", choices, len(items) / base_s,
                         len(items) / batched_s, len(items) / fast_s, ratio, f"{max_diff:.1e}", "yes" if same_pred else "NO"])
    table(f"BBQ log-likelihood scoring, {len(items)} bundled items, 1 thread",
          ["model", "choices/item", "choices", "items/s one-by-one", "items/s batched (no sharing)",
           "items/s shared prefix", "ratio", "max |dLL|", "same predictions"], rows)
    ratio = statistics.median(ratios)  # over families x choice sets
    verdict("bbq", ratio, f">= {GOAL:g}, identical predictions")
    return ratio


if __name__ == "__main__":
    main()
