"""`alignsweep report DIR [--out DIR]`: summary tables in the terminal, `report.html` + PNG plots on disk."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="summarise a sweep: tables, plots and report.html")
    p.add_argument("results_dir", metavar="DIR", help="the sweep directory, e.g. results/demo")
    p.add_argument("--out", help="where report.html and the plots go (default: DIR/report)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from alignsweep.analysis.report import write_report

    if args.out is not None and "://" not in args.out:  # before anything is read: a file there, or no room
        from alignsweep.spec.results_path import check_results_dir

        check_results_dir(args.out)
    write_report(args.results_dir, args.out, seed=args.seed)
    return 0
