"""One module per subcommand, each exposing `register(subparsers)`; `examples` gives each `--help` its examples."""

from __future__ import annotations

import argparse
from typing import Any


def examples(*lines: str) -> dict[str, Any]:
    """`add_parser` keywords that end a subcommand's `--help` with these example command lines, kept
    as written (argparse would otherwise re-wrap them into one paragraph)."""
    text = "examples:\n" + "\n".join(f"  {line}" for line in lines)
    return {"epilog": text, "formatter_class": argparse.RawDescriptionHelpFormatter}
