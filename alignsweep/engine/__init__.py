"""The sweep driver: starts Ray and the evaluator actors, runs Tune over the trial plans, and records
trials and progress as they happen."""
