"""alignsweep: distributed PEFT sweeps that measure what fine-tuning does to an LLM's safety and fairness."""

__version__ = "0.1.0"
