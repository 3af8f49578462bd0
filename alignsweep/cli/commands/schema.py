"""`alignsweep schema`: the sweep spec's JSON Schema, for editors (completion, hover docs, red squiggles).

Point an editor at it once: `alignsweep schema > sweep.schema.json`, then the first line of a sweep
file `# yaml-language-server: $schema=sweep.schema.json` (VS Code's YAML extension, Neovim, Helix…).
"""

from __future__ import annotations

import argparse
import json

from alignsweep.cli.commands import examples


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="print the sweep spec's JSON Schema (for editors)", **examples(
        "alignsweep schema > sweep.schema.json     # then, as the first line of a sweep file:",
        "                                          # yaml-language-server: $schema=sweep.schema.json",
        "alignsweep schema | jq '.$defs.TrainingSpec.properties | keys'",
    ))
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from alignsweep.spec.schema import sweep_schema

    print(json.dumps(sweep_schema(), indent=2))
    return 0
