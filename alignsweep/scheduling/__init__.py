"""Early stopping: which trials a sweep stops, and why (registry of Tune schedulers, the alignment rule)."""

from alignsweep.scheduling.registry import SCHEDULERS, build_scheduler
from alignsweep.scheduling.rules import ALIGNMENT, AlignmentRule, alignment_breach, screen_breach

__all__ = ["ALIGNMENT", "SCHEDULERS", "AlignmentRule", "alignment_breach", "build_scheduler", "screen_breach"]
