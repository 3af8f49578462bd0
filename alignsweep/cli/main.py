"""The `alignsweep` command: one subcommand per user step (run, resume, query, report, audit, …).

Exit codes are a contract: 0 success, 1 runtime failure, 2 bad input (`InputError`: one line, and
nothing written). Each subcommand lives in its own module exposing `register(subparsers)`, which adds
its parser and sets `handler` (a function taking the parsed args and returning an exit code); adding a
subcommand is one entry in `_SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import re
import sys

from alignsweep.errors import InputError, ResultsDiskFull
from alignsweep.suggest import did_you_mean

_SUBCOMMANDS = [
    "alignsweep.cli.commands.run",
    "alignsweep.cli.commands.models",
    "alignsweep.cli.commands.query",
    "alignsweep.cli.commands.report",
    "alignsweep.cli.commands.audit",
    "alignsweep.cli.commands.pareto",
    "alignsweep.cli.commands.schema",
    "alignsweep.cli.commands.judge_check",
]

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
#: Every character `str.splitlines` breaks on: escaped in an error line, so it stays one line.
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


class _Parser(argparse.ArgumentParser):
    _intermixing = False

    def error(self, message: str) -> None:  # argparse exits 2 too; keep it to one line
        self.exit(EXIT_BAD_INPUT, f"alignsweep: error: {_with_suggestion(message)}\n")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        """A subcommand's positionals may follow its options: `run SPEC --dry-run key=value` works like
        `run SPEC key=value --dry-run` (plain argparse stops filling `key=value…` at the first option).

        Parsed plainly first (so errors read as usual); only when positionals were left over is it
        parsed again with them intermixed.
        """
        leaf = not any(isinstance(a, argparse._SubParsersAction) for a in self._actions)
        if not leaf or self._intermixing:
            return super().parse_known_args(args, namespace)
        parsed, extras = super().parse_known_args(args, copy.copy(namespace))
        if all(e.startswith("-") for e in extras):
            return parsed, extras
        self._intermixing = True  # parse_known_intermixed_args calls parse_known_args itself
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def _with_suggestion(message: str) -> str:
    """argparse's `invalid choice: 'rn' (choose from …)` with the closest choice named first."""
    m = re.search(r"invalid choice: '([^']*)' \((choose from (.*))\)$", message)
    if not m:
        return message
    hint = did_you_mean(m.group(1), re.findall(r"'([^']*)'", m.group(3)))
    return f"{message[:m.start(2)]}{hint} {message[m.start(2):]}" if hint else message


def _unrecognized(parser: argparse.ArgumentParser, command: str | None, extras: list[str]) -> str:
    """`unrecognized arguments: --dryrun (did you mean '--dry-run'?)`, from the subcommand's own options."""
    message = f"unrecognized arguments: {' '.join(extras)}"
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    leaf = sub.choices.get(command) if sub and command else None
    options = [o for a in (leaf or parser)._actions for o in a.option_strings if o.startswith("--")]
    flag = next((e.split("=", 1)[0] for e in extras if e.startswith("-")), None)
    hint = did_you_mean(flag, options) if flag else ""
    return f"{message} ({hint})" if hint else message


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="alignsweep", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in _SUBCOMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def _version() -> str:
    from alignsweep import __version__

    return f"alignsweep {__version__}"


def _quiet_environment() -> None:
    """Defaults that keep a run offline-safe and its output readable; the user's settings win.

    Not among them: `HF_HUB_DISABLE_PROGRESS_BARS`. The hub's bars draw only while a download runs,
    and a first download of a large checkpoint should show its progress (`logs.quiet_libraries`).
    """
    for key, value in {
        "RAY_USAGE_STATS_ENABLED": "0",
        "TRANSFORMERS_VERBOSITY": "error",
        "TOKENIZERS_PARALLELISM": "false",
        "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
        "RAY_AIR_NEW_OUTPUT": "0",
    }.items():
        os.environ.setdefault(key, value)


def main(argv: list[str] | None = None) -> int:
    _quiet_environment()
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        parser.error(_unrecognized(parser, args.command, extras))
    try:
        return int(args.handler(args) or EXIT_OK)
    except InputError as exc:  # one line, whatever the user's text quoted in it holds (a key with a newline)
        message = "".join(repr(c)[1:-1] if c in _LINE_BREAKS else c for c in str(exc))
        print(f"alignsweep: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ResultsDiskFull as exc:  # a runtime failure (exit 1), but one line: what to free and how to go on
        print(f"alignsweep: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("alignsweep: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The console script (and `python -m alignsweep.cli.main`): `main`, then exit at once.

    Why not `sys.exit(main())`: when `main` returns, every result is written (atomically) and Ray is
    shut down, yet the interpreter's teardown of Ray's, pyarrow's and rich's modules and threads took
    another ~1 s of the demo's wall. The streams are flushed first; an exception still propagates.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
