"""Model references: a hub id, a local path, or `tiny:<family>`, all loaded by the same code."""

from alignsweep.models.loading import load_model, load_tokenizer
from alignsweep.models.refs import ModelRef, resolve_model

__all__ = ["ModelRef", "load_model", "load_tokenizer", "resolve_model"]
