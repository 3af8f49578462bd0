"""The Ray Tune function trainable: every PEFT method, every base model, one code path.

Per eval interval it saves the adapter as a Tune checkpoint, asks the shared evaluator actors to score
it (when the sweep evaluates), and reports loss plus alignment metrics so schedulers can act on them.
A restored trial (retry after a crash, `alignsweep resume`) continues from its last checkpoint.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Callable

from alignsweep.faults import maybe_die
from alignsweep.logs import quiet_libraries
from alignsweep.trainables.plan import TrialPlan
from alignsweep.trainables.trainer import PeftTrainer

#: Signature of the evaluation hook: (plan, checkpoint_dir, step, context) → flat metrics.
Scorer = Callable[[TrialPlan, str, int, dict[str, Any]], dict[str, float]]


def _evaluator_scores(plan: TrialPlan, checkpoint_dir: str, step: int, context: dict[str, Any]) -> dict[str, float]:
    from alignsweep.evaluators.actors import score_checkpoint

    return score_checkpoint(
        base_model=plan.base_model,
        adapter_dir=checkpoint_dir,
        trial_id=plan.variant_id,
        method=plan.method,
        step=step,
        sweep=plan.sweep,
        results_dir=context["results_dir"],
    )


def _node_id() -> str:
    """The Ray node this trial runs on (nodes of one machine share an IP, so the IP cannot tell)."""
    import ray

    return ray.get_runtime_context().get_node_id()


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
    trainable, total = trainer.trainable_parameters()
    interval = int(plan.training["eval_interval"])
    losses: list[float] = []
    while not trainer.done:
        losses.append(trainer.train_step())
        if trainer.state.step % interval and not trainer.done:
            continue
        with tempfile.TemporaryDirectory(prefix="alignsweep-ckpt-") as tmp:
            trainer.save_checkpoint(tmp)
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
            }
            if scorer is not None:
                metrics.update(scorer(plan, tmp, trainer.state.step, context))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
        maybe_die("trial")  # test-only: SIGKILL the trial's worker after a checkpoint, when armed
        losses = []
