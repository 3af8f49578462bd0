"""`alignsweep report DIR [--out DIR] [--format html|md]`: summary tables in the terminal and a
self-contained `report.html` (+ the PNG plots) on disk, or a Markdown summary for a pull request.

A sweep whose spec has a `tracking:` section also gets the report as artifacts of its tracker runs
(MLflow: the sweep's run; W&B: a `report` run in the sweep's group); `--no-tracking` skips that.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from alignsweep.errors import InputError

from alignsweep.cli.commands import examples


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="summarise a sweep: tables, plots and report.html", **examples(
        "alignsweep report results/demo                      # terminal tables, results/demo/report/report.html",
        "alignsweep report results/demo --out /tmp/r         # the report somewhere else",
        "alignsweep report results/demo --format md > pr.md  # a Markdown summary for a pull-request comment",
    ))
    p.add_argument("results_dir", metavar="DIR", help="the sweep directory, e.g. results/demo")
    p.add_argument("--out", help="where report.html (or report.md) and the plots go (default: DIR/report)")
    p.add_argument("--format", choices=("html", "md"), default="html",
                   help="html: terminal tables + report.html with its plots embedded (+ PNGs beside it); "
                        "md: a Markdown summary (headline tables, worst regressions) printed and written to report.md")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--no-tracking", action="store_true",
                   help="do not log the report to the MLflow / W&B runs named in the sweep's `tracking:`")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from alignsweep.analysis.report import write_markdown, write_report

    if args.out is not None and "://" not in args.out:  # before anything is read: a file there, or no room
        from alignsweep.spec.results_path import check_results_dir

        check_results_dir(args.out)
    spec = None if args.no_tracking else _tracked_spec(args.results_dir)
    if args.format == "md":
        path, text = write_markdown(args.results_dir, args.out, seed=args.seed)
        print(text)
        files = [Path(path)]
    else:
        result = write_report(args.results_dir, args.out, seed=args.seed)
        files = [result.html, *result.plots]
    if spec is not None:
        from alignsweep.engine.tracking_runs import log_report

        for line in log_report(spec.tracking, spec.name, args.results_dir, files):  # not into `--format md > pr.md`
            print(line, file=sys.stderr if args.format == "md" else sys.stdout)
    return 0


def _tracked_spec(results_dir: str) -> Any:
    """The sweep's spec when it names trackers (their clients checked before anything is written), else None."""
    import pyarrow.fs as pafs

    from alignsweep.engine.sweep import SPEC_FILE, load_spec_from_sweep_dir
    from alignsweep.spec.tracking import check_tracking
    from alignsweep.store import fs as store_fs

    fs, path = store_fs.resolve(results_dir)
    if fs.get_file_info(store_fs.join(path, SPEC_FILE)).type == pafs.FileType.NotFound:
        return None  # an audit's results directory, or one laid out by hand: nothing to log to
    spec = load_spec_from_sweep_dir(results_dir)
    try:
        check_tracking(spec.tracking, where=f"{results_dir}/{SPEC_FILE}: tracking")
    except InputError as exc:
        raise InputError(f"{exc} (or --no-tracking)") from None
    return spec if spec.tracking is not None else None
