"""`resume` over a damaged store: unreadable files set aside before Tune restores, their rows re-produced after.

Why after `fit()`: a store file is one (table, trial, step), and what wrote it is known from the key —
the `trials` row from the trial's Tune result, a (trial, step)'s metrics and items by scoring that
step's checkpoint again (step 0, the untrained control, by building the adapter as initialised: the
seed makes it the same adapter). Evaluation is greedy and seeded, so the rewritten rows are the rows
that were lost. A base model's files need nothing here: `run_sweep` scores every base on each run.
Limits: a stopped trial's last step also held the screen its stopper acted on; the rewrite holds the
full evaluation and the held-out loss only.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from alignsweep.store import TRIALS, write_records
from alignsweep.store.integrity import StoreFile, set_aside, unreadable_files

logger = logging.getLogger(__name__)


def set_aside_unreadable(sweep_dir: str, console: Any = None) -> list[StoreFile]:
    """Move unreadable store files to `<sweep>/corrupt/` and return what they held (for `restore_lost`)."""
    bad = unreadable_files(sweep_dir)
    for f, moved in zip(bad, set_aside(sweep_dir, bad)):
        line = f"store file unreadable ({f.reason}): {f.path} → {moved}; its rows are rewritten"
        console.print(line) if console is not None else logger.warning(line)
    return bad


def restore_lost(sweep_dir: str, lost: list[StoreFile], grid: Any, screen: float | None) -> list[tuple[str, str, int | None]]:
    """Re-produce each lost key from Tune's results (`grid`); the keys rewritten."""
    results = {(r.config or {}).get("plan", {}).get("variant_id"): r for r in grid}
    done: list[tuple[str, str, int | None]] = []
    scored: set[tuple[str, int]] = set()
    for f in lost:
        res = results.get(f.trial_id)
        if res is None or (f.table != TRIALS and f.step is None):  # a base (rescored on every run), a trial
            continue  # this spec no longer has, or a file the writer did not name: nothing to re-produce
        if f.table == TRIALS:
            _rewrite_trial_row(sweep_dir, res)
        elif (f.trial_id, f.step) not in scored:  # one scoring rewrites every table of that step
            _rescore(sweep_dir, res, int(f.step or 0), screen)
            scored.add((f.trial_id, int(f.step or 0)))
        done.append((f.table, f.trial_id, f.step))
    return done


def _rewrite_trial_row(sweep_dir: str, res: Any) -> None:
    from alignsweep.engine.trials_table import checkpoint_uri, trial_row

    plan = res.config["plan"]
    status = "ERROR" if res.error is not None else "TERMINATED"
    row = trial_row(plan, status, dict(res.metrics or {}), checkpoint_uri(res.checkpoint),
                    str(res.error) if res.error is not None else None, None)
    write_records(sweep_dir, TRIALS, [row], trial_id=plan["variant_id"])


def _rescore(sweep_dir: str, res: Any, step: int, screen: float | None) -> None:
    from alignsweep.evaluators.actors import score_checkpoint
    from alignsweep.evaluators.payload import AdapterPayload

    plan = res.config["plan"]
    if step:
        reported = _history(res.path).get(step, {})
        adapter, extra = AdapterPayload.read(_checkpoint_for(res.path, step)), _heldout_rows(reported)
        full = bool(reported.get("full_evaluation", True) or not screen)
    else:
        adapter, extra = _control(plan)
        full = True
    score_checkpoint(base_model=plan["base_model"], adapter=adapter, trial_id=plan["variant_id"], step=step,
                     sweep=plan["sweep"], results_dir=sweep_dir, method=plan["method"], screen=screen,
                     full=full, extra_rows=extra)


def _heldout_rows(reported: dict[str, Any]) -> list[dict[str, Any]]:
    """The held-out loss row the trial stored beside its evaluation at that step (`peft_trial.utility_rows`)."""
    if "heldout_loss" not in reported:
        return []
    return [{"benchmark": "utility", "category": "overall", "metric": "heldout_loss",
             "value": reported["heldout_loss"], "n": reported.get("heldout_loss_n")}]


def _history(trial_path: str) -> dict[int, dict[str, Any]]:
    """The trial's reported results by step (Tune's `result.json`, one JSON object per line)."""
    history: dict[int, dict[str, Any]] = {}
    try:
        with open(os.path.join(trial_path, "result.json")) as source:
            for line in source:
                try:
                    result = json.loads(line)
                except ValueError:
                    continue
                if "step" in result:
                    history[int(result["step"])] = result
    except OSError:
        pass
    return history


def _checkpoint_for(trial_path: str, step: int) -> str:
    from alignsweep.trainables.trainer import checkpoint_step

    for name in sorted(os.listdir(trial_path)):
        folder = os.path.join(trial_path, name)
        if checkpoint_step(folder) == step:
            return folder
    raise FileNotFoundError(f"{trial_path}: no checkpoint of step {step} to rescore")


def _control(plan: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    """The trial's step-0 control rebuilt from its plan (the trainer is seeded): adapter and held-out loss row."""
    from alignsweep.trainables.peft_trial import control
    from alignsweep.trainables.plan import TrialPlan
    from alignsweep.trainables.trainer import PeftTrainer

    return control(PeftTrainer(TrialPlan.from_config(plan)).setup())
