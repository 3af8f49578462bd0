"""`alignsweep query DIR [DIR…] "SQL"`: answer a SQL question from one or more sweeps' results."""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from pathlib import Path

import pyarrow as pa

from alignsweep.cli.commands import examples
from alignsweep.errors import InputError

FORMATS = ("table", "csv", "json", "parquet")
_TABLE_ROWS = 500  # a terminal table longer than this helps nobody; the other formats write everything


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "query",
        help="run SQL over sweep results (views: trials, metrics, safety_items, fairness_items, deltas, deltas_by_step)",
        **examples(
            'alignsweep query results/demo "SELECT method, count(*) FROM trials GROUP BY method"',
            'alignsweep query results/demo "SELECT * FROM deltas WHERE category = \'overall\'" -o deltas.csv',
            'alignsweep query results/a results/b "SELECT sweep, avg(value) FROM metrics GROUP BY sweep" --format json',
        ),
    )
    p.add_argument("args", nargs="+", metavar="DIR… SQL", help="one or more sweep directories, then the SQL")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from --output's suffix, else table)")
    p.add_argument("--output", "-o", help="write to this file instead of the terminal")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from alignsweep.analysis.views import run_query

    if len(args.args) < 2:
        raise InputError('give one or more sweep directories and then the SQL, e.g. results/demo "SELECT * FROM trials"')
    *dirs, sql = args.args
    if not sql.strip():
        raise InputError("the SQL is empty (the last argument), e.g. \"SELECT * FROM trials\"")
    fmt = args.format or _format_from_suffix(args.output)
    if fmt == "parquet" and not args.output:
        raise InputError("--format parquet needs --output FILE")
    if args.output:  # checked before the query runs: a directory there, or a folder that cannot hold it
        from alignsweep.spec.results_path import check_results_dir

        if Path(args.output).is_dir():
            raise InputError(f"--output {args.output!r}: is a directory; give a file name")
        if not Path(args.output).parent.is_dir():
            raise InputError(f"--output {args.output!r}: folder {str(Path(args.output).parent)!r} does not exist")
        check_results_dir(str(Path(args.output).parent))
    result = run_query(dirs, sql)
    _emit(result, fmt, args.output)
    return 0


def _format_from_suffix(output: str | None) -> str:
    suffix = Path(output).suffix.lstrip(".").lower() if output else ""
    return suffix if suffix in FORMATS else "table"


def _emit(result: pa.Table, fmt: str, output: str | None) -> None:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(result, output)
        return
    if fmt == "table":
        text = _render_table(result, to_terminal=output is None)
    elif fmt == "csv":
        text = result.to_pandas().to_csv(index=False)
    else:
        text = json.dumps([_jsonable(row) for row in result.to_pylist()], indent=2, default=str) + "\n"
    if output:
        Path(output).write_text(text)
    elif text:
        sys.stdout.write(text)


def _jsonable(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def _render_table(result: pa.Table, *, to_terminal: bool) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    for name in result.column_names:
        table.add_column(name, justify="right" if pa.types.is_floating(result.schema.field(name).type) else "left")
    for row in result.slice(0, _TABLE_ROWS).to_pylist():
        table.add_row(*(_cell(v) for v in row.values()))
    caption = f"{result.num_rows} rows"
    if result.num_rows > _TABLE_ROWS:
        caption += f", first {_TABLE_ROWS} shown (use --format csv for all)"
    table.caption = caption
    if to_terminal:
        Console(emoji=False).print(table)
        return ""
    buffer = io.StringIO()
    Console(file=buffer, width=200, no_color=True, emoji=False).print(table)
    return buffer.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return "∅"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

