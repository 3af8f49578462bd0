"""The `alignsweep` command line: one module per subcommand under `commands/`."""
