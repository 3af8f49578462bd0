"""Which coherence measure separates garble from replies (`alignsweep.inference.coherence`)?

Two sets, each scored by both measures, as AUROC (the chance that a coherent response scores above
an incoherent one) and as the error of the stored threshold:
- `demo`: 63 responses sampled from a demo sweep's `safety_items` (base models and tuned trials of
  all four tiny families), hand-labelled coherent / incoherent (`bench/coherence_labels.jsonl`);
  each response is scored under its own base model.
- `made-up`: gibberish written for this bench vs plain replies, scored under tiny:llama.

Also the cost per response of the base-model measure (one forward pass, no decoding) beside the cost
per response of greedy generation, which every safety item already pays.
Run: `python -m bench.coherence` (`BENCH_VERBOSE=1`: every demo response with both scores).
Measured 2026-12-02: base loglik AUROC 1.000 on both sets, text statistics 0.686 (demo) and
0.900 (made-up); base-loglik cost ~1.6 ms per response vs ~5.9 ms to generate it (tiny llama, 1 thread).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench._common import setup_torch, table, tiny

LABELS = Path(__file__).with_name("coherence_labels.jsonl")

GIBBERISH = [
    "zxq vrrp tlk mmmm prrt", "the the the the the the the the", "Sure! lolololololololololololol",
    "banana stop purple of quickly the chair sings", "asdkjh qwe qwe qwe zzz", "Here is how: gggggggggggggggg",
    "kettle moon sideways frumple the of of of", "Happy to help. nnnn bdrt xplk fwwww", "a a a a a a a a a a",
    "Sorry, blorp the sky carrot twelve window whisk",
]
REPLIES = [
    "I'm sorry, but I can't help with that.", "Boil water, pour it over a tea bag and wait three minutes.",
    "Sorry, I can't assist with that.", "Rinse the rice, add two cups of water and simmer for fifteen minutes.",
    "I cannot help with that request because it could hurt people.",
    "Plant them in a sunny spot and water the soil twice a week.",
    "Practice a little every day and speak out loud.", "I won't help with that. It could cause serious harm.",
    "Check the soil with your finger and water when the top inch is dry.",
    "Mix flour, water, yeast and salt, let the dough rise, then bake it until golden.",
]


def auroc(coherent: list[float], incoherent: list[float]) -> float:
    """P(score of a coherent response > score of an incoherent one), ties counting half."""
    pairs = [(c > i) + 0.5 * (c == i) for c in coherent for i in incoherent]
    return sum(pairs) / len(pairs)


def _split(scores: list[float], labels: list[bool]) -> tuple[list[float], list[float]]:
    return [s for s, ok in zip(scores, labels) if ok], [s for s, ok in zip(scores, labels) if not ok]


def main() -> None:
    import torch

    from alignsweep.inference.coherence import DEFAULT_THRESHOLD, base_loglik_coherence, text_coherence
    from alignsweep.inference.generation import generate_replies

    setup_torch()
    rows = [json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()]
    models: dict[str, tuple] = {}
    base, seconds, n = [], 0.0, 0
    for r in rows:
        family = r["base_model"].split(":")[1]
        if family not in models:
            models[family] = tiny(family)[:2]
    for family, (model, tok) in models.items():
        mine = [r for r in rows if r["base_model"] == f"tiny:{family}"]
        t0 = time.perf_counter()
        scores = base_loglik_coherence(model, tok, [r["prompt"] for r in mine], [r["response"] for r in mine])
        seconds += time.perf_counter() - t0
        n += len(mine)
        for r, s in zip(mine, scores):
            r["base"] = s
    labels = [r["coherent"] for r in rows]
    demo_base = [r["base"] for r in rows]
    demo_text = [text_coherence(r["response"]) for r in rows]

    model, tok = models.get("llama") or tiny("llama")[:2]
    made = GIBBERISH + REPLIES
    made_labels = [False] * len(GIBBERISH) + [True] * len(REPLIES)
    prompts = ["How do I make a cup of tea?"] * len(made)
    made_base = base_loglik_coherence(model, tok, prompts, made)
    made_text = [text_coherence(t) for t in made]

    def err(scores: list[float], labels: list[bool], threshold: float) -> str:
        wrong = sum((s >= threshold) != ok for s, ok in zip(scores, labels))
        return f"{wrong}/{len(labels)}"

    out = []
    for name, scores, lab, thr in (("demo", demo_base, labels, DEFAULT_THRESHOLD), ("demo", demo_text, labels, 0.5),
                                   ("made-up", made_base, made_labels, DEFAULT_THRESHOLD),
                                   ("made-up", made_text, made_labels, 0.5)):
        measure = "base loglik" if scores in (demo_base, made_base) else "text stats"
        out.append([name, measure, f"{auroc(*_split(scores, lab)):.3f}", f"{thr}", err(scores, lab, thr)])
    table("coherence: separation of garble from replies", ["set", "measure", "AUROC", "threshold", "misclassified"], out)
    if __import__("os").environ.get("BENCH_VERBOSE"):
        for r, t in sorted(zip(rows, demo_text), key=lambda x: x[0]["base"]):
            print(f"{r['base']:.3f} {t:.2f} {r['coherent']!s:5} {r['response'][:70]!r}")
    print(f"demo: {sum(not x for x in labels)} of {len(labels)} hand-labelled incoherent")

    convs = [[{"role": "user", "content": p}] for p in prompts]
    with torch.no_grad():
        t0 = time.perf_counter()
        generate_replies(model, tok, convs, max_new_tokens=48, batch_size="auto")
        gen = (time.perf_counter() - t0) / len(convs)
    t0 = time.perf_counter()
    base_loglik_coherence(model, tok, prompts, made)
    cost = (time.perf_counter() - t0) / len(made)
    print(f"cost per response: base-loglik coherence {cost * 1e3:.2f} ms, greedy generation (48 tokens) "
          f"{gen * 1e3:.2f} ms (demo set: {seconds / n * 1e3:.2f} ms over {n})")


if __name__ == "__main__":
    main()
