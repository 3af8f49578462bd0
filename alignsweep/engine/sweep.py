"""Run a sweep: validate, lay out the results directory, start Ray, score bases, fit the Tuner.

The driver is the only writer of `sweep.yaml`, `manifest.json` and the `trials` table (through a Tune
callback, so statuses follow Tune's own events); trials and evaluator actors write metrics and items.
A sweep directory that already holds Tune state is resumed, never redone: finished trials are kept,
unfinished and errored ones continue from their last checkpoint.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow.fs as pafs
import yaml

from alignsweep.spec.config import SweepSpec, spec_from_text, validate_spec
from alignsweep.spec.plan import expand_trials
from alignsweep.spec.tracking import check_tracking
from alignsweep.scheduling.registry import build_scheduler
from alignsweep.errors import InputError, ResultsDiskFull, is_disk_full
from alignsweep.store import fs as store_fs
from alignsweep.store import update_manifest, write_manifest, write_records
from alignsweep.trainables.plan import TrialPlan

SPEC_FILE = "sweep.yaml"
TUNE_DIR = "tune"


@dataclass
class SweepOutcome:
    sweep_dir: str
    trials: int
    errors: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    grid: list[Any] = field(default_factory=list, repr=False)  # Tune's results, one per trial


def sweep_dir_for(spec: SweepSpec, results: str | None) -> str:
    root = (results or spec.results).rstrip("/")
    return f"{root}/{spec.name}" if "://" in root else store_fs.resolve(f"{root}/{spec.name}")[1]


def spec_yaml(spec: SweepSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


def load_spec_from_sweep_dir(sweep_dir: str) -> SweepSpec:
    """The spec as run, read back from `<sweep_dir>/sweep.yaml` (for `resume`)."""
    source = f"{sweep_dir.rstrip('/')}/{SPEC_FILE}"
    try:
        fs, path = store_fs.resolve(sweep_dir)
        data = store_fs.read_bytes(fs, store_fs.join(path, SPEC_FILE))
    except (OSError, ValueError) as exc:  # a directory named sweep.yaml, an unreadable file, a malformed URI
        raise InputError(f"{source}: cannot read it ({(str(exc).splitlines() or [type(exc).__name__])[0]})") from None
    if data is None:
        raise InputError(f"{sweep_dir}: not a sweep directory (no {SPEC_FILE}); start it with `alignsweep run`")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    return spec_from_text(source, text)


def prepare_sweep_dir(spec: SweepSpec, sweep_dir: str) -> bool:
    """Claim the directory for this spec; True when an earlier run of the same spec is there to resume."""
    fs, path = store_fs.resolve(sweep_dir)
    existing = store_fs.read_bytes(fs, store_fs.join(path, SPEC_FILE))
    text = spec_yaml(spec)
    if existing is not None:
        if existing.decode() != text and not _same_spec(existing.decode(), spec):
            raise InputError(
                f"{sweep_dir}: holds a different spec for sweep {spec.name!r}; "
                "resume it with `alignsweep resume`, or choose another --results or sweep name"
            )
        return store_fs.read_bytes(fs, store_fs.join(path, TUNE_DIR, "tuner.pkl")) is not None
    if fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        raise InputError(f"{sweep_dir}: exists and is not an alignsweep sweep directory; choose another --results")
    store_fs.write_atomic(fs, store_fs.join(path, SPEC_FILE), lambda out: out.write(text.encode()))
    write_manifest(sweep_dir, seed=spec.seed, sweep=spec.name, extra=provenance(spec))
    return False


def provenance(spec: SweepSpec) -> dict[str, Any]:
    """What the manifest records of the inputs: each base model with the revision it was pinned to
    (None: the hub's default branch, or a local/tiny model), and the training data likewise."""
    t = spec.training
    return {"models": [{"ref": m.ref, "revision": m.revision, "dtype": m.dtype} for m in spec.models],
            "training_data": {"dataset": t.dataset, "split": t.dataset_split, "revision": t.dataset_revision}}


def _same_spec(text: str, spec: SweepSpec) -> bool:
    """Whether a stored spec, validated as today's code reads it, is `spec`: a sweep written before a
    field existed (it takes that field's default) is the same sweep, not a different one."""
    try:
        return validate_spec(yaml.safe_load(text)) == spec
    except InputError:
        return False


def run_sweep(spec: SweepSpec, *, results: str | None = None, address: str | None = None,
              num_cpus: int | None = None, console: Any = None, progress: str = "live",
              log_level: str = "info") -> SweepOutcome:
    """Run (or continue) the whole sweep and return a summary; bad input raises InputError before anything is written.

    `console` shows the progress (`progress`: `live` panel, `plain` timestamped lines, `none`) and the
    summary; `<sweep>/driver.log` gets the events and warnings from `log_level` up either way.
    A results disk that fills up, in any process, raises `ResultsDiskFull` (one line, exit 1): every
    store write is atomic, so what is stored is whole, and `resume` continues once space is freed.
    """
    import logging

    from alignsweep.engine.driver_log import DriverLog

    sweep_dir = sweep_dir_for(spec, results)
    plain = console is not None and progress == "plain"
    quiet = [logging.getLogger(name) for name in _DISK_FULL_NOISE]
    for logger in quiet:  # the one line below says it; Tune's per-retry tracebacks would bury it
        logger.addFilter(_not_disk_full)
    try:
        with DriverLog(log_level, console=console.file if plain else None) as log:
            try:
                outcome = _run(spec, sweep_dir, address, num_cpus, console, progress, log)
            except KeyboardInterrupt:
                log.events.warning("sweep %s interrupted; `alignsweep resume` continues it", spec.name)
                raise
            except InputError:
                raise
            except Exception as exc:
                log.events.error("sweep %s failed: %s: %s", spec.name, type(exc).__name__,
                                 (str(exc).splitlines() or [""])[0])
                raise
        if any(is_disk_full(res.error) for res in outcome.grid if res.error is not None):
            raise ResultsDiskFull(sweep_dir)  # trials retried until they errored, each for want of space
        return outcome
    except BaseException as exc:
        if is_disk_full(exc) and not isinstance(exc, ResultsDiskFull):
            raise ResultsDiskFull(sweep_dir) from None
        raise
    finally:
        for logger in quiet:
            logger.removeFilter(_not_disk_full)


#: Loggers that report each trial failure and failed checkpoint upload with a traceback.
_DISK_FULL_NOISE = ("ray.tune.execution.tune_controller", "ray.train._internal.syncer")


def _not_disk_full(record: Any) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return not (is_disk_full(record.getMessage()) or (error is not None and is_disk_full(error)))


def _run(spec: SweepSpec, sweep_dir: str, address: str | None, num_cpus: int | None, console: Any,
         progress: str, log: Any) -> SweepOutcome:
    from alignsweep.engine.repair import restore_lost, set_aside_unreadable
    from alignsweep.engine.runtime import cluster_address, ray_starting

    plans = expand_trials(spec)
    eval_spec = spec.evaluation_spec()
    # Ctrl-C: Tune's own handler would end fit() as if the sweep were done; let KeyboardInterrupt through
    # instead (exit 130, manifest left unfinished). Checkpoints and Tune's state are already on disk,
    # so `alignsweep resume` continues exactly as after a crash.
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    # Persist Tune's experiment state within a second of any event, so a driver killed after a trial
    # finished does not replay it on resume. Not "0": Tune then rewrites the whole state (3.4 MB of
    # JSON on the demo, every trial's last result and metric history) on each 0.1 s controller tick,
    # which cost the demo's driver 34 CPU-s of 2 cores and 0.25 s between consecutive trials.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # see _build_tuner's callbacks
    check_tracking(spec.tracking)  # a tracker whose client is missing: one line before Ray starts
    # Ray starts on a thread while the checks below run (slots would idle through both otherwise);
    # a failed check still raises before anything is written, and leaving the block shuts Ray down.
    with ray_starting(address, num_cpus=num_cpus) as ray_ready:
        from alignsweep.spec.preflight import check_sweep_inputs
        from alignsweep.models.refs import resolve_model
        from alignsweep.trainables.peft_trial import peft_trial

        for model in spec.models:  # build tiny models once here, before trials race to build them
            resolve_model(model.ref)
        check_sweep_inputs(spec, sweep_dir, local=cluster_address(address) is None)  # models, data, results path: bad input fails before anything is written
        # What the Tuner and the actors need (Ray Tune alone is ~2.5 s of imports on a busy laptop) is
        # imported while Ray is still starting, not after it and before the first trial.
        import alignsweep.engine.progress  # noqa: F401  (ray.tune, rich.live)
        import alignsweep.engine.trials_table  # noqa: F401
        import alignsweep.evaluators.actors  # noqa: F401
        ray_ready()  # a Ray that cannot start (a bad --address) fails here, before the directory is claimed
        resumable = prepare_sweep_dir(spec, sweep_dir)
        if resumable:
            update_manifest(sweep_dir, finished=None, resumed=True)
        log.open(sweep_dir)
        lost = set_aside_unreadable(sweep_dir, console) if resumable else []  # damaged between runs
        if resumable:  # Tune's own state, truncated by a disk that filled up: its last good copy
            from alignsweep.engine.tune_state import restore_damaged_state

            restore_damaged_state(sweep_dir, store_fs.join(store_fs.resolve(sweep_dir)[1], TUNE_DIR))

        from alignsweep.engine.progress import SweepDisplay, showing
        from alignsweep.engine.progress_state import SweepProgress

        started = time.time()
        display = SweepDisplay(SweepProgress(spec.name, {p.variant_id: p.max_steps for p in plans}, started),
                               console, progress if console is not None else "none", spec.scheduler.metric,
                               spec.scheduler.mode)
        display.event(f"sweep {spec.name} {'resumed' if resumable else 'started'}: {len(plans)} trials, "
                      f"results {sweep_dir}")
        handles = _start_evaluators(spec, eval_spec, sweep_dir)
        with ThreadPoolExecutor(max_workers=len(spec.models) + 1) as pool, showing(display):  # bases + the judge check
            base_jobs = [pool.submit(_score_base, spec, m.ref, sweep_dir, display) for m in spec.models] if handles else []
            base_jobs += [pool.submit(_check_judge, eval_spec, handles, sweep_dir)] if handles else []
            final = bool(handles) and eval_spec.final == "all"
            tuner = _build_tuner(spec, plans, sweep_dir, peft_trial, resumable, bool(handles), final)
            grid = tuner.fit()
            _wait(base_jobs)
            if len(grid) < len(plans):  # stopped before every trial started: unfinished, not done
                raise KeyboardInterrupt(sweep_dir)
            if final:  # stopped trials the callback could not score (a failure, a resume): now, before "finished"
                from alignsweep.engine.final_eval import ensure_final_evaluations

                ensure_final_evaluations(sweep_dir, grid)
            if lost:
                restore_lost(sweep_dir, lost, grid, _screen(spec))
    update_manifest(sweep_dir, finished=_now(), wall_s=round(time.time() - started, 1))
    rows = [r for r in (_result_row(res) for res in grid) if r]
    errors = sum(1 for res in grid if res.error is not None)
    if console is not None:
        from alignsweep.engine.progress import summary_table

        console.print(summary_table(rows, spec.scheduler.metric, spec.scheduler.mode))
        if spec.tracking is not None:
            from alignsweep.engine.tracking_runs import describe_runs

            for line in describe_runs(spec.tracking, spec.name, sweep_dir, len(plans)):
                console.print(line)
    return SweepOutcome(sweep_dir=sweep_dir, trials=len(plans), errors=errors, rows=rows, grid=list(grid))


def _now() -> str:
    from alignsweep.store import now

    return now()


def _wait(jobs: list[Future]) -> None:
    for job in jobs:
        job.result()


def _start_evaluators(spec: SweepSpec, eval_spec: Any, sweep_dir: str) -> Any:
    if eval_spec is None:
        return None
    from alignsweep.evaluators.actors import start_evaluators

    # wait=False: trials start training while the actors load (slots would otherwise idle meanwhile)
    return start_evaluators(eval_spec, {m.ref: m.load_options() for m in spec.models}, spec.name, sweep_dir, wait=False)


def _score_base(spec: SweepSpec, model_ref: str, sweep_dir: str, display: Any = None) -> None:
    """Score a base model once: the reference that every trial's change is measured against."""
    from alignsweep.engine.trials_table import base_trial_id, base_trial_row
    from alignsweep.evaluators.actors import score_checkpoint

    trial_id = base_trial_id(model_ref)
    t0 = time.time()
    scores = score_checkpoint(base_model=model_ref, adapter=None, trial_id=trial_id, method="base", step=0,
                              sweep=spec.name, results_dir=sweep_dir, screen=_screen(spec))
    row = base_trial_row(spec.name, model_ref, time.time() - t0, device=scores.get("evaluator_device"))
    write_records(sweep_dir, "trials", [row], trial_id=trial_id)
    if display is not None:
        display.event(display.progress.base_scored(model_ref, scores, time.time() - t0))


def _check_judge(eval_spec: Any, handles: Any, sweep_dir: str) -> None:
    """The safety judge's agreement with `safety.labels` (once, through its actor): what the report
    shows beside every safe rate. Stored in `judge_checks` as `judge-check/safety`."""
    s = eval_spec.safety
    if not s.enabled or s.labels is None:
        return
    import ray

    from alignsweep.evaluators.judge_check import run_check

    actor = handles.judges["safety"]
    run_check(sweep_dir, "safety", lambda pairs: ray.get(actor.judge.remote(pairs)),
              ray.get(actor.get_name.remote()), s.labels)


def _screen(spec: SweepSpec) -> float | None:
    """The share of items screened at intermediate evaluations (the alignment stopper's), else None."""
    return spec.scheduler.screen_fraction if spec.scheduler.name == "alignment" else None


def _build_tuner(spec: SweepSpec, plans: list[TrialPlan], sweep_dir: str, trainable: Any, resumable: bool,
                 evaluate: bool, final: bool) -> Any:
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from alignsweep.engine.final_eval import FinalEvaluationCallback
    from alignsweep.engine.progress import ProgressCallback
    from alignsweep.engine.scheduler_state import SchedulerStateCallback
    from alignsweep.engine.trials_table import TrialsTableCallback

    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu, **spec.resources.custom}
    wrapped = tune.with_resources(trainable, resources)
    # Loss schedulers rank a trial only within its `scheduler.group_by` group (base model × method by default).
    scheduler = build_scheduler(spec.scheduler, max(_evals_for(p) for p in plans), [p.to_config() for p in plans])
    # Tune's own result logs (result.json, progress.csv: what ResultGrid and `bench/` read) are named
    # here because the automatic set also has the TensorBoard logger, which imports torch into the
    # driver (~4 s of CPU while the first trials wait) and writes every metric again per result;
    # run_sweep turns the automatic set off. The store holds every metric for any plotting tool.
    from alignsweep.engine.tune_state import TuneStateBackup

    stop_reasons = getattr(scheduler, "stop_reasons", None)
    callbacks = [JsonLoggerCallback(), CSVLoggerCallback(), TuneStateBackup(sweep_dir),
                 TrialsTableCallback(sweep_dir, stop_reasons=stop_reasons),
                 SchedulerStateCallback(scheduler), ProgressCallback(stop_reasons)]
    if final:  # a stopped trial's last checkpoint gets the full evaluation its last screen was not
        callbacks.append(FinalEvaluationCallback(sweep_dir))
    if spec.tracking is not None:  # MLflow / W&B: one run per trial (engine/tracking.py)
        from alignsweep.engine.tracking import tracking_callbacks

        callbacks += tracking_callbacks(spec.tracking, spec.name, sweep_dir, spec_yaml(spec))
    if resumable:
        return tune.Tuner.restore(
            store_fs.join(sweep_dir, TUNE_DIR), trainable=wrapped, resume_unfinished=True, resume_errored=True,
        )
    context = {"results_dir": sweep_dir, "evaluate": evaluate, "screen": _screen(spec)}
    return tune.Tuner(
        wrapped,
        param_space={"plan": tune.grid_search([p.to_config() for p in plans]), "context": context},
        tune_config=tune.TuneConfig(
            scheduler=scheduler,
            max_concurrent_trials=spec.resources.max_concurrent,
            reuse_actors=True,
            trial_name_creator=lambda t: t.config["plan"]["variant_id"],
            trial_dirname_creator=lambda t: t.config["plan"]["variant_id"],
        ),
        run_config=tune.RunConfig(
            name=TUNE_DIR,
            storage_path=sweep_dir,
            failure_config=tune.FailureConfig(max_failures=spec.failure.max_retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            callbacks=callbacks,
            verbose=0,
        ),
    )


def _evals_for(plan: TrialPlan) -> int:
    """How many reports (evaluations) a trial makes; an upper bound when the length is in epochs."""
    interval = plan.training["eval_interval"]
    steps = plan.max_steps if plan.max_steps is not None else plan.epochs * 10_000
    return max(1, -(-steps // interval))


def _result_row(result: Any) -> dict[str, Any] | None:
    from alignsweep.engine.progress import SHOWN_METRICS

    plan = (result.config or {}).get("plan")
    if plan is None:
        return None
    metrics = result.metrics or {}
    return {
        "trial_id": plan["variant_id"],
        "base_model": plan["base_model"],
        "method": plan["method"],
        "learning_rate": plan["learning_rate"],
        "status": "ERROR" if result.error is not None else "TERMINATED",
        "steps": metrics.get("step"),
        "total_steps": metrics.get("total_steps"),
        "loss": metrics.get("loss"),
        "node_id": metrics.get("node_id"),
        **{k: v for k, v in metrics.items() if k in SHOWN_METRICS},
    }
