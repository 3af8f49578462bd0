"""Long-lived Ray actors that score checkpoints: evaluator pools (one per base model) and judges.

Why actors: a base model is loaded once per actor instead of once per checkpoint, and one judge
(possibly a GPU-hungry guard model) serves every trial, batching their requests and caching verdicts.
The driver calls `start_evaluators` before the trials; a trial calls `score_checkpoint`, which finds
the actors by name and hands them the adapter by content (an `AdapterPayload` in Ray's object store),
never by a path: the evaluator usually runs on another host than the trial that saved it.
Driver-owned named actors die with the driver, so nothing outlives a sweep.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from alignsweep.evaluators.config import EvaluationSpec
from alignsweep.evaluators.judges import JudgeSpec
from alignsweep.evaluators.judges import Verdict
from alignsweep.evaluators.payload import AdapterPayload
from alignsweep.models.loading import LoadOptions

NAMESPACE = "alignsweep"
#: How long a request waits for an actor on a lost node to come back on another (see score_checkpoint).
UNAVAILABLE_WAIT_S = 180.0


#: The pool name of actors that hold every base model (`evaluators.shared_actors`).
SHARED = "shared"


def evaluator_name(sweep: str, base_model: str, index: int) -> str:
    """`<sweep>/evaluator/<base>/<i>`, or `<sweep>/evaluator/shared/<i>` for actors holding every base."""
    return f"{sweep}/evaluator/{base_model}/{index}"


def judge_name(sweep: str, role: str) -> str:
    return f"{sweep}/judge/{role}"  # role: safety | over_refusal


def judge_roles(spec: EvaluationSpec) -> dict[str, str]:
    """Role → the role whose judge actor serves it. Over-refusal uses the safety judge's actor when
    it is that same single judge (the default: both `refusal`): one process to start and, for a
    guard model, one copy in memory. Verdicts are cached by (judge, prompt, response), so the two
    roles sharing one cache cannot mix."""
    same = list(spec.safety.judges) == [spec.over_refusal.judge]
    return {"safety": "safety", "over_refusal": "safety" if same else "over_refusal"}


# ---------------------------------------------------------------- judge service


class JudgeService:
    """Batches concurrent judge requests (from all trials) and caches verdicts by hash(judge, prompt, response).

    Requests that arrive while a batch is being collected or judged join the next batch, up to
    `max_batch` pairs; identical pairs in flight are judged once.
    """

    def __init__(self, specs: Sequence[JudgeSpec], rule: str = "any_unsafe", max_batch: int = 64,
                 wait_s: float = 0.01) -> None:
        from alignsweep.evaluators.judges import build_judges

        self.judge = build_judges(list(specs), rule)
        self.name = self.judge.name
        self.max_batch, self.wait_s = max_batch, wait_s
        self.cache: dict[str, Verdict] = {}
        self._inflight: dict[str, asyncio.Future] = {}
        self._pending: list[tuple[str, tuple[str, str]]] = []
        self._flushing = False
        self.requests = self.cache_hits = self.joined_in_flight = 0
        self.batch_sizes: list[int] = []

    def key(self, prompt: str, response: str) -> str:
        h = hashlib.sha256()
        for part in (self.name, prompt, response):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()

    async def judge_pairs(self, pairs: list[tuple[str, str]]) -> list[Verdict]:
        loop = asyncio.get_running_loop()
        results: list[Verdict | None] = [None] * len(pairs)
        waits: list[tuple[int, asyncio.Future]] = []
        for i, (prompt, response) in enumerate(pairs):
            self.requests += 1
            k = self.key(prompt, response)
            if k in self.cache:
                self.cache_hits += 1
                results[i] = self.cache[k]
            elif k in self._inflight:
                self.joined_in_flight += 1  # the same pair from another trial is being judged now
                waits.append((i, self._inflight[k]))
            else:
                fut = loop.create_future()
                self._inflight[k] = fut
                self._pending.append((k, (prompt, response)))
                waits.append((i, fut))
        if self._pending and not self._flushing:
            self._flushing = True
            asyncio.ensure_future(self._flush())
        for i, fut in waits:
            results[i] = await fut
        return results  # type: ignore[return-value]

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(self.wait_s)  # let requests from other trials join this batch
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
                try:
                    verdicts = await asyncio.to_thread(self.judge.judge, [pair for _, pair in batch])
                except Exception as exc:  # noqa: BLE001 — hand the failure to every waiting request
                    for k, _ in batch:
                        self._inflight.pop(k).set_exception(exc)
                    continue
                self.batch_sizes.append(len(batch))
                for (k, _), v in zip(batch, verdicts, strict=True):
                    self.cache[k] = v
                    self._inflight.pop(k).set_result(v)
        finally:
            self._flushing = False

    def stats(self) -> dict[str, Any]:
        return {"requests": self.requests, "cache_hits": self.cache_hits, "joined_in_flight": self.joined_in_flight,
                "batch_sizes": list(self.batch_sizes),
                "cached": len(self.cache), "name": self.name}


class _JudgeActor(JudgeService):
    async def judge(self, pairs: list[tuple[str, str]]) -> list[Verdict]:
        from alignsweep.faults import maybe_die

        maybe_die("judge")  # test-only: SIGKILL mid-request when armed
        return await self.judge_pairs(pairs)

    async def where(self) -> dict[str, Any]:
        return {**placement(), "device": getattr(self.judge, "device", "cpu")}

    async def get_name(self) -> str:
        return self.name

    async def get_stats(self) -> dict[str, Any]:
        return self.stats()


def judge_actor_class() -> Any:
    import ray

    return ray.remote(_JudgeActor)


# ---------------------------------------------------------------- evaluator actor


class _EvaluatorActor:
    """Holds one or more base models (an `Evaluator` each, loaded once); scores one checkpoint per call
    and persists it."""

    def __init__(self, spec_json: str, base_models: dict[str, LoadOptions], sweep: str) -> None:
        import ray

        from alignsweep.evaluators.evaluate import Evaluator
        from alignsweep.logs import quiet_libraries

        quiet_libraries()

        spec = EvaluationSpec.model_validate_json(spec_json)
        roles = judge_roles(spec)
        safety = ray.get_actor(judge_name(sweep, roles["safety"]), namespace=NAMESPACE)
        over = ray.get_actor(judge_name(sweep, roles["over_refusal"]), namespace=NAMESPACE)
        judges = dict(
            judge=lambda pairs: ray.get(safety.judge.remote(pairs)), judge_name=ray.get(safety.get_name.remote()),
            over_refusal_judge=lambda pairs: ray.get(over.judge.remote(pairs)),
            over_refusal_judge_name=ray.get(over.get_name.remote()),
        )
        self.evaluators = {base: Evaluator(spec, base, options=options, **judges) for base, options in base_models.items()}

    def _evaluator(self, base_model: str | None) -> Any:
        if base_model is None and len(self.evaluators) == 1:
            return next(iter(self.evaluators.values()))
        if base_model not in self.evaluators:
            raise ValueError(f"this evaluator holds {sorted(self.evaluators)}, not {base_model!r}")
        return self.evaluators[base_model]

    def evaluate(self, adapter: AdapterPayload | None, trial_id: str, step: int, results_dir: str | None,
                 method: str, screen: float | None = None, full: bool = True,
                 extra_rows: list[dict[str, Any]] | None = None, base_model: str | None = None) -> dict[str, Any]:
        """`adapter`: the payload itself (Ray resolves the ObjectRef `score_checkpoint` passes)."""
        from alignsweep.evaluators.evaluate import screen_counts, screen_deltas, store_result

        evaluator = self._evaluator(base_model)
        result = evaluator.evaluate(adapter, screen=screen, full=full)
        result.metrics += list(extra_rows or [])
        from alignsweep.faults import maybe_die, maybe_hold

        maybe_die("evaluator")  # test-only: SIGKILL after scoring, before storing, when armed
        maybe_hold("evaluator")  # test-only: park mid-request (its node is then removed), when armed
        if results_dir is not None:
            store_result(result, results_dir, trial_id=trial_id, step=step,
                         base_model=evaluator.base_model, method=method)
        flat = result.flat()
        if screen is not None:
            flat.update(screen_deltas(flat, evaluator.screen_reference(screen)))
            flat.update(screen_counts(result.metrics))
        flat["evaluator_device"] = evaluator.device  # where this score was computed (a string, not a metric)
        return {"metrics": flat, "rows": result.metrics, "seconds": result.seconds}

    def where(self) -> dict[str, Any]:
        return {**placement(), "pid": os.getpid(), "base_models": sorted(self.evaluators),
                "models": {base: {"device": ev.device, "dtype": str(ev.model.dtype).removeprefix("torch.")}
                           for base, ev in self.evaluators.items()}}

    def logits(self, texts: list[str], base_model: str | None = None) -> Any:
        """The base model's logits (for checks that adapters leave it untouched)."""
        import torch

        evaluator = self._evaluator(base_model)
        enc = evaluator.tokenizer(texts, return_tensors="pt", padding=True)
        with torch.no_grad():
            return evaluator.model(**enc).logits


def placement() -> dict[str, Any]:
    """Where this actor runs: node id, GPU ids and the resources it holds (checked by placement tests)."""
    import ray

    ctx = ray.get_runtime_context()
    return {"node_id": ctx.get_node_id(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
            "resources": ctx.get_assigned_resources()}


@dataclass(frozen=True)
class EvaluatorHandles:
    judges: dict[str, Any]  # role → judge actor
    pools: dict[str, list[Any]]  # base model → evaluator actors


def start_evaluators(spec: EvaluationSpec, base_models: Mapping[str, LoadOptions], sweep: str, results_dir: str, *,
                     wait: bool = True) -> EvaluatorHandles:
    """Start the judge actors and the evaluator actors (driver side): a pool per base model, or
    `evaluators.shared_actors` actors that each hold every base (`pools` maps each base to its actors).

    `wait=True` blocks until every actor has loaded. The sweep driver passes `wait=False`: the actors
    are named as soon as they are created, a request to one that is still loading simply queues, and
    trials train for a whole eval interval before their first request, so waiting here would only
    keep every trial slot empty while peft imports and base models load (~10–20 s on a laptop).
    `results_dir` is accepted so the driver passes one set of arguments to both ends; the actors
    write wherever `score_checkpoint` tells them. Keep the returned handles alive for the sweep.
    """
    import ray

    del results_dir
    s, pool = spec.safety, spec.evaluators
    judge_cls = judge_actor_class()
    common = dict(namespace=NAMESPACE, max_restarts=s.judge_max_restarts, max_task_retries=pool.request_retries)
    specs = {"safety": (list(s.judges), s.ensemble), "over_refusal": ([spec.over_refusal.judge], "any_unsafe")}
    roles = judge_roles(spec)
    started = {
        role: judge_cls.options(name=judge_name(sweep, role), num_cpus=spec.judge_resources(role).cpu,
                                num_gpus=spec.judge_resources(role).gpu,
                                resources=dict(spec.judge_resources(role).custom),
                                get_if_exists=True, **common).remote(*specs[role], s.judge_max_batch)
        for role in sorted(set(roles.values()))
    }
    judges = {role: started[served_by] for role, served_by in roles.items()}
    if wait:
        ray.get([j.get_name.remote() for j in started.values()])
    evaluator_cls = ray.remote(_EvaluatorActor)
    spec_json = spec.model_dump_json()

    def start(name: str, index: int, bases: list[str]) -> Any:
        models = {base: base_models[base] for base in bases}  # each base with its spec's loading settings
        return evaluator_cls.options(name=evaluator_name(sweep, name, index), namespace=NAMESPACE,
                                     num_cpus=pool.resources.cpu, num_gpus=pool.resources.gpu,
                                     resources=dict(pool.resources.custom),
                                     max_restarts=pool.max_restarts, max_task_retries=pool.request_retries,
                                     get_if_exists=True).remote(spec_json, models, sweep)

    if pool.shared_actors is not None:
        actors = [start(SHARED, i, list(base_models)) for i in range(pool.shared_actors)]
        pools = {base: actors for base in base_models}
    else:
        pools = {base: [start(base, i, [base]) for i in range(pool.actors_per_model)] for base in base_models}
        actors = [a for pool_actors in pools.values() for a in pool_actors]
    if wait:
        ray.get([a.__ray_ready__.remote() for a in actors])
    return EvaluatorHandles(judges=judges, pools=pools)


def _pool(sweep: str, base_model: str) -> list[Any]:
    """The actors that hold `base_model`: its own pool, else the shared actors (found by name)."""
    import ray

    for name in (base_model, SHARED):
        actors = []
        while True:
            try:
                actors.append(ray.get_actor(evaluator_name(sweep, name, len(actors)), namespace=NAMESPACE))
            except ValueError:
                break
        if actors:
            return actors
    raise RuntimeError(f"no evaluator actors for {base_model!r} in sweep {sweep!r}: start_evaluators first")


def score_checkpoint(base_model: str, adapter: AdapterPayload | None, trial_id: str, step: int, sweep: str,
                     results_dir: str, *, method: str | None = None, retries: int = 2, screen: float | None = None,
                     full: bool = True, extra_rows: list[dict[str, Any]] | None = None) -> dict[str, float]:
    """Score one checkpoint on its base model's pool, persist its records, return flat metrics.

    `adapter` is the checkpoint's adapter by content (`AdapterPayload.read(dir)` where it was saved; None
    scores the base): it goes into Ray's object store once and the evaluator attaches it from there, so
    the evaluator may run on any node. `results_dir` is the sweep directory (`<results>/<sweep>`) that
    the store writes under. `method` names the adapter's method in the records (required with an
    adapter; `base` without one). `screen` adds the fixed subset's metrics and their change vs the
    base (`screen_safe_rate_delta` …); `full=False` scores only that subset; `extra_rows` (e.g. the
    trial's held-out loss) are stored with the metrics. The actor is chosen by a stable hash of the
    adapter's content digest (of the trial id without one). A request to an actor that died is
    retried after its restart, with the same object.
    """
    import ray
    from ray.exceptions import ActorUnavailableError, RayActorError

    from alignsweep.evaluators.evaluate import adapter_key, method_of

    if adapter is not None and not isinstance(adapter, AdapterPayload):
        raise TypeError(f"score_checkpoint takes an AdapterPayload (AdapterPayload.read(dir)), not "
                        f"{type(adapter).__name__}: the evaluator may not see the trial's files")
    name = method_of(adapter, method)
    # Byte-identical adapters (trials that differ only in learning rate, at step 0) go to the same
    # actor, whose cache then scores them once; other requests spread by content, else by trial.
    route = adapter_key(adapter, screen, full) or trial_id
    payload = ray.put(adapter) if adapter is not None else None  # once, whatever the retries
    # An actor on a lost node is *unavailable* until Ray notices the node is gone and restarts it
    # elsewhere (seconds to tens of seconds): wait for that, backing off, without spending a retry;
    # a dead actor (its restarts used up, or it failed again) spends one.
    attempt, delay, deadline = 0, 0.5, time.monotonic() + UNAVAILABLE_WAIT_S
    while True:
        actors = _pool(sweep, base_model)
        actor = actors[zlib.crc32(route.encode()) % len(actors)]
        try:
            return ray.get(actor.evaluate.remote(payload, trial_id, step, results_dir, name, screen, full,
                                                 extra_rows, base_model))["metrics"]
        except ActorUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 5.0)
        except RayActorError:
            attempt += 1
            if attempt > retries:
                raise
