"""Judge throughput: the judge service (one actor's logic: requests from all trials batched, verdicts
cached by hash(judge, prompt, response)) vs one judge call per response.

The judge is a Llama-Guard-style generative guard (`LlamaGuardJudge`, the real prompt and parser)
on a tiny stand-in checkpoint; its verdicts are meaningless here, only the work is real. Requests
come from 4 concurrent "trials" judging the bundled hazard prompts; the responses are the tiny
llama base's own replies, and trials repeat many of them (as tuned models that still refuse do), so
the row with the cache shows what repeated responses save. The demo's real cache hit rate is in
bench/sweep.py's table (from the demo's safety_items).
"""

from __future__ import annotations

import asyncio

from bench._common import median_pair, setup_torch, table, tiny, verdict

N_TRIALS = 4
N_PROMPTS = 32


def _requests() -> list[list[tuple[str, str]]]:
    """Per trial: (prompt, response) pairs; trial k changes the response of every (k+2)-th prompt."""
    from alignsweep.evaluators.datasets import load_hazard_prompts
    from alignsweep.evaluators.benchmarks.base import respond_greedily

    model, tok, _ = tiny("llama")
    prompts = [p.prompt for p in load_hazard_prompts("bundled")][::5][:N_PROMPTS]
    base = respond_greedily(model, tok, prompts, max_new_tokens=32, batch_size="auto")
    return [[(p, f"{r} (trial {k})" if i % (k + 2) == 0 else r) for i, (p, r) in enumerate(zip(prompts, base))]
            for k in range(N_TRIALS)]


def main() -> float:
    from alignsweep.evaluators.actors import JudgeService
    from alignsweep.evaluators.judges import JudgeSpec
    from alignsweep.evaluators.judges import LlamaGuardJudge

    setup_torch()
    trials = _requests()
    flat = [pair for t in trials for pair in t]
    single = LlamaGuardJudge("tiny:llama", batch_size=1)
    spec = JudgeSpec(name="llama_guard", model="tiny:llama")

    def one_by_one() -> list:
        return [single.judge([pair])[0] for pair in flat]

    def service_run(cache: bool) -> tuple[list, JudgeService]:
        service = JudgeService([spec], max_batch=64, wait_s=0.005)
        if not cache:
            service.cache = _NoCache()

        async def go() -> list:  # two waves of two concurrent trials: later checkpoints meet the cache
            half = len(trials) // 2
            first = await asyncio.gather(*(service.judge_pairs(t) for t in trials[:half]))
            return first + await asyncio.gather(*(service.judge_pairs(t) for t in trials[half:]))

        return [v for t in asyncio.run(go()) for v in t], service

    reference = one_by_one()
    batched, stats = service_run(cache=True)
    identical = [v.verdict for v in reference] == [v.verdict for v in batched]
    base_s, fast_s = median_pair(one_by_one, lambda: service_run(cache=True))
    _, nocache_s = median_pair(one_by_one, lambda: service_run(cache=False), repeats=1)
    s = stats.stats()
    hit_rate = (s["cache_hits"] + s.get("joined_in_flight", 0)) / max(s["requests"], 1)
    ratio = base_s / fast_s if identical else 0.0
    table(f"judge throughput, {len(flat)} requests from {N_TRIALS} concurrent trials, llama_guard on tiny:llama, 1 thread",
          ["path", "seconds", "judgements/s", "ratio", "batches", "cache + in-flight hit rate"], [
              ["one judge call per response", base_s, len(flat) / base_s, 1.0, len(flat), "-"],
              ["service, batched, no cache", nocache_s, len(flat) / nocache_s, base_s / nocache_s, "-", "0"],
              ["service, batched + cache (fast)", fast_s, len(flat) / fast_s, ratio, len(s["batch_sizes"]),
               f"{hit_rate:.2f}"],
          ])
    print(f"same verdicts as one-by-one: {'yes' if identical else 'NO'}; auto guard batch size: "
          f"{stats.judge.batch_size}")
    verdict("judge", ratio, "report; cache hit rate on the demo in bench.sweep")
    return ratio


class _NoCache(dict):
    """A verdict cache that never holds anything (to separate batching from caching)."""

    def __setitem__(self, key, value) -> None:
        pass


if __name__ == "__main__":
    main()
