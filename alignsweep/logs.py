"""Keep known-harmless library chatter out of the user's console, in the driver and in Ray workers;
and the one format of alignsweep's own log lines (the plain progress lines and `driver.log`).

Trial and evaluator processes print through Ray to the driver's terminal; a deprecation warning per
model load or a log line per checkpoint would bury the sweep's own progress display.
"""

from __future__ import annotations

import logging
import os
import time
import warnings

_HARMLESS_WARNINGS = (
    ".*is_gradient_checkpointing.*",  # transformers 5 deprecation raised inside peft
    ".*Position ids are not supported.*",  # peft prompt learning in generate
)

#: `--log-level` choices, least severe first.
LOG_LEVELS = ("debug", "info", "warning", "error")


def quiet_libraries() -> None:
    """Library warnings and transformers' per-load bars off; the hub's download bars stay on.

    Why the hub's stay: a first run that downloads an 8B checkpoint would otherwise sit silent for
    minutes. They only draw while bytes arrive (nothing draws offline or for a local path), and
    `HF_HUB_DISABLE_PROGRESS_BARS=1` in the environment still turns them off.
    """
    for pattern in _HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        from huggingface_hub.utils import enable_progress_bars
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()  # "Loading weights" per model load; it turns the hub's off too …
        if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").strip().lower() not in ("1", "true", "yes", "on"):
            enable_progress_bars()  # … so the hub's download bars come back
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def utc_stamp(when: float | None = None) -> str:
    """`2026-12-02T05:40:12Z`: the timestamp that starts every plain progress line and driver.log line."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if when is None else when))


class LineFormatter(logging.Formatter):
    """`<UTC stamp> <message>` for alignsweep's own info lines (the events), `<UTC stamp> WARNING
    <logger>: <message>` for everything else, so a grep for a trial id or for `WARNING` finds its lines."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if record.levelno == logging.INFO and record.name.startswith("alignsweep"):
            return f"{utc_stamp(record.created)} {text}"
        return f"{utc_stamp(record.created)} {record.levelname} {record.name}: {text}"


def log_level(name: str) -> int:
    """`--log-level` value → the logging level (`debug` → 10); the parser restricts names to LOG_LEVELS."""
    return logging.getLevelName(name.upper())
