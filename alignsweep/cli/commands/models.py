"""`alignsweep models build [FAMILY…]`: build (or verify cached) tiny model families ahead of a sweep."""

from __future__ import annotations

import argparse

from alignsweep.cli.commands import examples


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="build the offline tiny model families", **examples(
        "alignsweep models build                  # every tiny family (llama, qwen2, mistral, gemma)",
        "alignsweep models build llama qwen2      # just these two",
    ))
    p.add_argument("action", choices=["build"])
    p.add_argument("families", nargs="*", help="tiny families (default: all)")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from alignsweep.models.tiny import _main as tiny_main

    return int(tiny_main(["build", *args.families]) or 0)
