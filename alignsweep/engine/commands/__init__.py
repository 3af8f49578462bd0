"""CLI subcommands, one module each; see `alignsweep.engine.cli`."""
