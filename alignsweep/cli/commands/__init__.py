"""CLI subcommands, one module each; see `alignsweep.cli.main`."""
