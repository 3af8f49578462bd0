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
import sys

from alignsweep.errors import InputError, ResultsDiskFull

_SUBCOMMANDS = [
    "alignsweep.cli.commands.run",
    "alignsweep.cli.commands.models",
    "alignsweep.cli.commands.query",
    "alignsweep.cli.commands.report",
    "alignsweep.cli.commands.audit",
    "alignsweep.cli.commands.pareto",
]

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    _intermixing = False

    def error(self, message: str) -> None:  # argparse exits 2 too; keep it to one line
        self.exit(EXIT_BAD_INPUT, f"alignsweep: error: {message}\n")

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
    """Defaults that keep a run offline-safe and its output readable; the user's settings win."""
    for key, value in {
        "RAY_USAGE_STATS_ENABLED": "0",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "TOKENIZERS_PARALLELISM": "false",
        "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
        "RAY_AIR_NEW_OUTPUT": "0",
    }.items():
        os.environ.setdefault(key, value)


def main(argv: list[str] | None = None) -> int:
    _quiet_environment()
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or EXIT_OK)
    except InputError as exc:
        print(f"alignsweep: error: {exc}", file=sys.stderr)
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
