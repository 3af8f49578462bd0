"""Reading a finished (or running) sweep: DuckDB views over the store, statistics, the Pareto front,
the audit gate and the report."""
