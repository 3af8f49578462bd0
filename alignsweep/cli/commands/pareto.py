"""`alignsweep pareto DIR`: the configurations of a sweep that no other beats on every objective.

Reads the store's `pareto` view (definition and objectives in `engine.pareto`), so the command, the
report and `alignsweep query "SELECT * FROM pareto"` can never disagree.
"""

from __future__ import annotations

import argparse

from alignsweep.cli.commands import examples


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pareto", help="the Pareto front of a sweep (safety, over-refusal, fairness, utility, size)",
                       **examples("alignsweep pareto results/demo",
                                  "alignsweep pareto results/demo --all --format csv > front.csv"))
    p.add_argument("results_dir", metavar="DIR", help="sweep results directory (<results>/<sweep>)")
    p.add_argument("--all", action="store_true", help="list every fully scored configuration, front first")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from alignsweep.analysis.pareto import OBJECTIVES
    from alignsweep.analysis.views import run_query

    where = "" if args.all else "WHERE on_front"
    columns = ", ".join(["trial_id", "family", "method", *(o.column for o in OBJECTIVES), "dominated_by", "on_front"])
    table = run_query([args.results_dir], f"SELECT {columns} FROM pareto {where} ORDER BY dominated_by, trial_id")
    if args.format == "csv":
        import pyarrow.csv as pacsv
        import sys

        pacsv.write_csv(table, sys.stdout.buffer)
        return 0
    if args.format == "json":
        import json

        print(json.dumps(table.to_pylist(), indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    out = Table(title=f"Pareto front of {args.results_dir} ({table.num_rows} configurations)", header_style="bold")
    labels = {o.column: f"{o.label} {'↑' if o.sense == 'max' else '↓'}" for o in OBJECTIVES}
    for name in table.column_names:
        out.add_column(labels.get(name, name), overflow="fold", no_wrap=name == "trial_id")
    for row in table.to_pylist():
        out.add_row(*(_cell(k, v) for k, v in row.items()))
    Console(emoji=False).print(out)
    if table.num_rows == 0:
        print("no fully scored configurations yet")
    return 0


def _cell(column: str, value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if column.startswith("d_"):
            return f"{100 * value:+.1f}"  # changes vs base, in points
        if column == "abs_bias_ambig":
            return f"{100 * value:.1f}"
        return f"{value:.4f}" if column == "param_share" else f"{value:.3f}"
    return str(value)
