"""alignsweep: distributed PEFT sweeps that measure what fine-tuning does to an LLM's safety and fairness."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`alignsweep.open(DIR, …)`: the results views in DuckDB, imported lazily so that `import
    alignsweep` stays cheap for Ray workers."""
    if name == "open":
        from alignsweep.analysis.views import open

        return open
    raise AttributeError(f"module 'alignsweep' has no attribute {name!r}")
