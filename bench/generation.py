"""Batched greedy generation: memory-budgeted left-padded batches with KV cache vs one `generate` per prompt.

Both paths go through `generate_replies` (the evaluators' only generation path), so the outputs are
compared as well as timed: the ratio only counts when every greedy reply is identical.
"""

from __future__ import annotations

import statistics

from bench._common import median_pair, setup_torch, table, tiny, verdict

GOAL = 5.0
N_PROMPTS = 64
MAX_NEW_TOKENS = 48


def main() -> float:
    from alignsweep.evaluators.datasets import load_hazard_prompts
    from alignsweep.inference.generation import auto_batch_size, generate_replies

    setup_torch()
    prompts = load_hazard_prompts("bundled")
    prompts = prompts[:: max(1, len(prompts) // N_PROMPTS)][:N_PROMPTS]
    conversations = [[{"role": "user", "content": p.prompt}] for p in prompts]
    rows, ratios = [], []
    for family in ("llama", "qwen2", "mistral", "gemma"):
        model, tok, _ = tiny(family)
        single = generate_replies(model, tok, conversations, max_new_tokens=MAX_NEW_TOKENS, batch_size=1)
        batched = generate_replies(model, tok, conversations, max_new_tokens=MAX_NEW_TOKENS)
        identical = single == batched
        tokens = sum(len(tok(r, add_special_tokens=False)["input_ids"]) + 1 for r in single)  # + EOS
        base_s, fast_s = median_pair(
            lambda: generate_replies(model, tok, conversations, max_new_tokens=MAX_NEW_TOKENS, batch_size=1),
            lambda: generate_replies(model, tok, conversations, max_new_tokens=MAX_NEW_TOKENS),
        )
        ratio = base_s / fast_s if identical else 0.0
        ratios.append(ratio)
        rows.append([f"tiny:{family}", auto_batch_size(model, 128 + MAX_NEW_TOKENS), tokens / base_s, tokens / fast_s,
                     ratio, "yes" if identical else "NO"])
    table(f"greedy generation, {len(conversations)} bundled hazard prompts, max_new_tokens={MAX_NEW_TOKENS}, 1 thread",
          ["model", "auto batch", "tok/s one-by-one", "tok/s batched", "ratio", "identical"], rows)
    ratio = statistics.median(ratios)  # over the four families
    verdict("generation", ratio, f">= {GOAL:g}, identical outputs")
    return ratio


if __name__ == "__main__":
    main()
