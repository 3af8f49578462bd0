"""Model references: a hub id, a local path, or `tiny:<family>`, all loaded by the same code."""

from alignsweep.models.loading import LoadOptions, load_model, load_tokenizer, load_with
from alignsweep.models.refs import ModelRef, resolve_model

__all__ = ["LoadOptions", "ModelRef", "load_model", "load_tokenizer", "load_with", "resolve_model"]
