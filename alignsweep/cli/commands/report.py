"""`alignsweep report DIR [--out DIR] [--format html|md]`: summary tables in the terminal and a
self-contained `report.html` (+ the PNG plots) on disk, or a Markdown summary for a pull request."""

from __future__ import annotations

import argparse

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
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from alignsweep.analysis.report import write_markdown, write_report

    if args.format == "md":
        _, text = write_markdown(args.results_dir, args.out, seed=args.seed)
        print(text)
        return 0
    write_report(args.results_dir, args.out, seed=args.seed)
    return 0
