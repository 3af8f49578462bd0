"""Keep known-harmless library chatter out of the user's console, in the driver and in Ray workers.

Trial and evaluator processes print through Ray to the driver's terminal; a deprecation warning per
model load or a log line per checkpoint would bury the sweep's own progress display.
"""

from __future__ import annotations

import logging
import warnings

_HARMLESS_WARNINGS = (
    ".*is_gradient_checkpointing.*",  # transformers 5 deprecation raised inside peft
    ".*Position ids are not supported.*",  # peft prompt learning in generate
)


def quiet_libraries() -> None:
    for pattern in _HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
