"""The Ray Tune function trainable: every PEFT method, every base model, one code path.

Reads as its steps: set up → (step 0) score the untrained adapter as the trial's *control* → train,
and per eval interval save the adapter as a Tune checkpoint, score it, and report loss plus alignment
metrics so schedulers can act on them. With a screen fraction in the context (the alignment-aware
stopper), intermediate intervals score only the fixed stratified screen — cheap enough to look every
interval — and the last step gets the full evaluation (a trial a scheduler stops gets it from the
driver: `engine.final_eval`). A restored trial (retry after a crash,
`alignsweep resume`) continues from its last checkpoint and does not redo its control.

The adapter is saved into a scratch directory on the trial's own node, read from there once into an
`AdapterPayload` and handed to the evaluator by content: the evaluator usually sits on another host,
which cannot open that directory. Tune persists the checkpoint itself under the results directory
(what `trials.checkpoint` points at).
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Callable

from alignsweep.evaluators.payload import AdapterPayload
from alignsweep.faults import maybe_die, maybe_hold
from alignsweep.logs import quiet_libraries
from alignsweep.trainables.plan import TrialPlan
from alignsweep.trainables.trainer import PeftTrainer

#: Signature of the evaluation hook: (plan, adapter, step, context, full, extra rows) → flat metrics.
Scorer = Callable[[TrialPlan, AdapterPayload, int, dict[str, Any], bool, list[dict[str, Any]]], dict[str, float]]


def _evaluator_scores(plan: TrialPlan, adapter: AdapterPayload, step: int, context: dict[str, Any], full: bool,
                      extra_rows: list[dict[str, Any]]) -> dict[str, float]:
    from alignsweep.evaluators.actors import score_checkpoint

    return score_checkpoint(
        base_model=plan.base_model,
        adapter=adapter,
        trial_id=plan.variant_id,
        method=plan.method,
        step=step,
        sweep=plan.sweep,
        results_dir=context["results_dir"],
        screen=context.get("screen"),
        full=full,
        extra_rows=extra_rows,
    )


def _node_id() -> str:
    """The Ray node this trial runs on (nodes of one machine share an IP, so the IP cannot tell)."""
    import ray

    return ray.get_runtime_context().get_node_id()


def utility_rows(trainer: PeftTrainer) -> list[dict[str, Any]]:
    """The held-out loss on the tuning data as a `metrics` row (benchmark `utility`)."""
    loss = trainer.heldout_loss()
    if loss is None:
        return []
    return [{"benchmark": "utility", "category": "overall", "metric": "heldout_loss", "value": loss,
             "n": len(trainer.heldout)}]


def control(trainer: PeftTrainer) -> tuple[AdapterPayload, list[dict[str, Any]]]:
    """The adapter as initialised (step 0) and its held-out loss row: what the method's mere presence
    does. Seeded, so `resume`'s repair rebuilds the same control from the plan alone."""
    with tempfile.TemporaryDirectory(prefix="alignsweep-control-") as tmp:
        trainer.save_checkpoint(tmp)
        return AdapterPayload.read(tmp), utility_rows(trainer)


def _score_control(trainer: PeftTrainer, plan: TrialPlan, context: dict[str, Any], scorer: Scorer) -> None:
    """Full evaluation of the control (step 0)."""
    adapter, rows = control(trainer)
    scorer(plan, adapter, 0, context, True, rows)


def peft_trial(config: dict[str, Any]) -> None:
    """Tune entry point; `config` = {"plan": TrialPlan.to_config(), "context": {...}}."""
    from ray import tune

    import torch

    quiet_libraries()
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    plan = TrialPlan.from_config(config["plan"])
    context = config.get("context", {})
    scorer: Scorer | None = _evaluator_scores if context.get("evaluate") else None
    started = time.time()
    trainer = PeftTrainer(plan).setup()
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            trainer.restore(directory)
    if scorer is not None and trainer.state.step == 0 and plan.training.get("control_eval", True):
        _score_control(trainer, plan, context, scorer)
    trainable, total = trainer.trainable_parameters()
    interval = int(plan.training["eval_interval"])
    losses: list[float] = []
    while not trainer.done:
        losses.append(trainer.train_step())
        if trainer.state.step % interval and not trainer.done:
            continue
        full = trainer.done or not context.get("screen")
        with tempfile.TemporaryDirectory(prefix="alignsweep-ckpt-") as tmp:
            trainer.save_checkpoint(tmp)
            utility = utility_rows(trainer)
            metrics: dict[str, Any] = {
                "loss": sum(losses) / len(losses),
                "step": trainer.state.step,
                "total_steps": trainer.state.total_steps,
                "epoch": trainer.state.step / trainer.state.steps_per_epoch,
                "trainable_params": trainable,
                "total_params": total,
                "variant_id": plan.variant_id,
                "train_wall_s": time.time() - started,
                "node_id": _node_id(),
                "device": trainer.device_name,
                "full_evaluation": full,
                **{row["metric"]: row["value"] for row in utility},
                **{f"{row['metric']}_n": row["n"] for row in utility},  # so a lost row can be rewritten whole
            }
            if scorer is not None:  # by content: the evaluator's node cannot see this scratch directory
                adapter = AdapterPayload.read(tmp)
                metrics.update(scorer(plan, adapter, trainer.state.step, context, full, utility))
            metrics["reported_at"] = time.time()  # float; Tune's `timestamp` has whole seconds only
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
        maybe_die("trial")  # test-only: SIGKILL the trial's worker after a checkpoint, when armed
        maybe_hold("trial")  # test-only: park here (its node is then removed), when armed
        losses = []
