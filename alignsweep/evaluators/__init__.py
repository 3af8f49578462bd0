"""Scoring checkpoints: benchmarks (plug-ins), judges (plug-ins), adapter attach/detach, the screen,
and the Ray actors that hold base models and judges for a whole sweep."""
