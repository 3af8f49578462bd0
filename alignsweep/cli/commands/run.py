"""`alignsweep run SWEEP.yaml` and `alignsweep resume SWEEP_DIR`.

Everything about the spec is checked before Ray starts (exit 2 on bad input); `--dry-run` stops right
there, after printing what the sweep would run and what it would ask of the cluster. Options and
`key=value` overrides may come in any order around the spec file.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from alignsweep.cli.commands import examples
from alignsweep.cli.progress import PROGRESS_CHOICES
from alignsweep.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a sweep (resumes it when its directory already holds one)", **examples(
        "alignsweep run sweeps/demo.yaml --dry-run training.max_steps=60     # count trials, start nothing",
        "alignsweep run sweeps/demo.yaml models.0.dtype=bfloat16 'training.learning_rates=[1e-3,3e-3]'",
        "alignsweep run sweeps/paper.yaml --address auto --results s3://bucket/sweeps",
    ))
    p.add_argument("spec", help="sweep YAML file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="override spec fields, e.g. training.batch_size=4")
    p.add_argument("--results", help="results root (default: the spec's `results`)")
    p.add_argument("--address", help="Ray cluster address (`auto`, host:port, ray://…); default: a local instance")
    p.add_argument("--num-cpus", type=int, help="CPUs for a local Ray instance (default: all)")
    p.add_argument("--dry-run", action="store_true", help="validate and expand; start nothing")
    _output_options(p)
    p.set_defaults(handler=_run)

    r = sub.add_parser("resume", help="finish an interrupted sweep: nothing redone, nothing lost", **examples(
        "alignsweep resume results/demo",
        "alignsweep resume results/demo --num-cpus 2",
        "alignsweep resume results/demo --progress plain --log-level debug | tee resume.log   # one line per event",
    ))
    r.add_argument("sweep_dir", help="the sweep's results directory, e.g. results/demo")
    r.add_argument("--address", help="Ray cluster address; default: a local instance")
    r.add_argument("--num-cpus", type=int, help="CPUs for a local Ray instance (default: all)")
    _output_options(r)
    r.set_defaults(handler=_resume)


def _output_options(p: argparse.ArgumentParser) -> None:
    from alignsweep.logs import LOG_LEVELS

    p.add_argument("--progress", choices=PROGRESS_CHOICES, default="auto",
                   help="how progress shows: a live panel, timestamped lines (one per event, flushed), or "
                   "nothing; auto: live on a terminal, plain otherwise (kubectl logs, CI, | tee)")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info", type=str.lower,
                   help="least severe message written to <results>/<sweep>/driver.log and shown by plain "
                   "progress (default: info, the events; debug adds every reported metric)")


def _run(args: argparse.Namespace) -> int:
    from alignsweep.spec.config import load_spec

    spec_file, overrides = split_spec_and_overrides([args.spec, *args.overrides])
    spec = load_spec(spec_file, overrides)
    if args.dry_run:
        return _dry_run(spec, args.results)
    return _execute(spec, args.results, args.address, args.num_cpus, args.progress, args.log_level)


def split_spec_and_overrides(tokens: list[str]) -> tuple[str, list[str]]:
    """The sweep file and the `key=value` overrides, in whatever order they were given.

    The file is the one token without `=`; a file whose name has an `=` in it (`runs/lr=1e-3.yaml`)
    is recognised because it exists. Anything else left without `=` is bad input.
    """
    plain = [t for t in tokens if "=" not in t]
    existing = [t for t in tokens if "=" in t and _is_file(t)]
    spec = plain[0] if plain else existing[0] if len(existing) == 1 else tokens[0]
    rest = list(tokens)
    rest.remove(spec)
    for item in rest:
        if "=" not in item:
            raise InputError(f"unexpected argument {item!r}: overrides are key=value")
    return spec, rest


def _is_file(token: str) -> bool:
    try:
        return Path(token).is_file()
    except (OSError, ValueError):  # a name too long for the filesystem, a NUL byte: not a file
        return False


def _resume(args: argparse.Namespace) -> int:
    from alignsweep.engine.sweep import load_spec_from_sweep_dir

    spec = load_spec_from_sweep_dir(args.sweep_dir)
    results_root = args.sweep_dir.rstrip("/").rsplit("/", 1)[0] if "/" in args.sweep_dir.rstrip("/") else "."
    return _execute(spec, results_root, args.address, args.num_cpus, args.progress, args.log_level)


def _execute(spec: Any, results: str | None, address: str | None, num_cpus: int | None, progress: str = "auto",
             log_level: str = "info") -> int:
    from rich.console import Console

    if num_cpus is not None and num_cpus < 1:  # Ray starts with 0 CPUs, and every trial then waits forever
        raise InputError(f"--num-cpus: at least 1 (got {num_cpus})")

    from alignsweep.engine.sweep import run_sweep

    from alignsweep.cli.progress import resolve_mode

    console = Console(width=None if sys.stdout.isatty() else 160, emoji=False)
    mode = resolve_mode(progress)
    outcome = run_sweep(spec, results=results, address=address, num_cpus=num_cpus, console=console, progress=mode,
                        log_level=log_level)
    console.print(f"results: {outcome.sweep_dir}  ({outcome.trials} trials, {outcome.errors} failed)")
    return 1 if outcome.errors else 0


def _dry_run(spec: Any, results: str | None) -> int:
    from rich.console import Console
    from rich.table import Table

    from alignsweep.spec.plan import expand_trials
    from alignsweep.engine.sweep import sweep_dir_for

    plans = expand_trials(spec)
    counts = Counter((p.base_model, p.method) for p in plans)
    methods = sorted({m for _, m in counts})
    table = Table(title=f"sweep {spec.name!r}: {len(plans)} trials")
    table.add_column("base model")
    for m in methods:
        table.add_column(m, justify="right")
    table.add_column("total", justify="right")
    for model in spec.models:
        row = [counts.get((model.ref, m), 0) for m in methods]
        label = f"{model.ref}@{model.revision}" if model.revision else model.ref
        table.add_row(label, *map(str, row), str(sum(row)))
    console = Console(emoji=False)
    console.print(table)
    res = spec.resources
    console.print(
        f"trials: {len(plans)}  resources per trial: cpu={res.cpu:g} gpu={res.gpu:g}  "
        f"total ask if all ran at once: cpu={res.cpu * len(plans):g} gpu={res.gpu * len(plans):g}"
    )
    console.print(f"scheduler: {spec.scheduler.name} on {spec.scheduler.metric} ({spec.scheduler.mode})  "
                  f"evaluation: {'on' if spec.evaluation is not None else 'off'}")
    eval_spec = spec.evaluation_spec()
    if eval_spec is not None:
        from alignsweep.spec.eval_plan import print_evaluation_plan

        print_evaluation_plan(console, eval_spec, len(spec.models))
    from alignsweep.spec.tracking import describe_tracking

    console.print(describe_tracking(spec.tracking, spec.name), markup=False)  # `alignsweep[mlflow]` is no style
    console.print(f"results would go to: {sweep_dir_for(spec, results)}")
    return 0
