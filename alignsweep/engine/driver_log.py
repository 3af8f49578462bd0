"""`<results>/<sweep>/driver.log`: the sweep's events and the driver's warnings, at `--log-level`.

Why buffered until `open`: the directory is claimed only once every input check has passed (bad input
leaves nothing written), yet Ray's start-up and the base models' scores come before that; their
records wait in memory and go to the file first.

Appended, never replaced: a resumed sweep's log continues the first run's. On object storage
(`s3://…`) a log cannot be appended in place, so the driver writes a local file (its path is the
first line logged) and, when the run ends (finished, failed or interrupted), uploads the stored log
plus the new lines as one atomic write; a driver that is SIGKILLed leaves its lines in that local file.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import tempfile
from typing import IO

from alignsweep.logs import LineFormatter, log_level
from alignsweep.store import fs as store_fs

FILE = "driver.log"
_OURS, _RAY = "alignsweep", "ray"


class _Threshold(logging.Filter):
    """Our records from `level` up; the libraries' (Ray's) from WARNING up whatever the level, so
    `--log-level debug` means alignsweep's detail, not Ray's."""

    def __init__(self, level: int, ours_only: bool = False) -> None:
        super().__init__()
        self.level, self.ours_only = level, ours_only

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == _OURS or record.name.startswith(_OURS + "."):
            return record.levelno >= self.level
        return not self.ours_only and record.levelno >= max(self.level, logging.WARNING)


class _Stderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time: rich's live panel swaps it to print above itself."""

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


class DriverLog:
    """The logging set-up of one driver session: the buffer, then `driver.log`, plus the console lines.

    `console`: the stream plain progress lines go to (with `--progress plain`), or None; warnings of
    ours go to stderr then (Ray prints its own there already).
    """

    def __init__(self, level: str = "info", console: IO[str] | None = None) -> None:
        self.level = log_level(level)
        self.buffer = logging.handlers.MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1)
        self.buffer.addFilter(_Threshold(self.level))
        self.console = logging.StreamHandler(console) if console is not None else _Stderr()
        self.console.addFilter(_Threshold(self.level if console is not None else max(self.level, logging.WARNING),
                                          ours_only=True))
        self.events = logging.getLogger(_OURS + ".sweep")
        self.file: logging.Handler | None = None
        self.local_path: str | None = None
        self.remote: tuple[object, str] | None = None
        for h in (self.buffer, self.console):
            h.setFormatter(LineFormatter())
        ours, ray = logging.getLogger(_OURS), logging.getLogger(_RAY)
        self._saved = (ours.level, ours.propagate)
        ours.setLevel(self.level)
        ours.propagate = False  # a root handler (another tool's basicConfig) would print every line twice
        for logger in (ours, ray):
            logger.addHandler(self.buffer)
        ours.addHandler(self.console)

    def open(self, sweep_dir: str) -> None:
        """Start writing `<sweep_dir>/driver.log` (appending), the buffered records first."""
        fs, path = store_fs.resolve(sweep_dir)
        if store_fs.is_local(fs):
            self.local_path = store_fs.join(path, FILE)
        else:
            fd, self.local_path = tempfile.mkstemp(prefix="alignsweep-driver-", suffix=".log")
            os.close(fd)
            self.remote = (fs, store_fs.join(path, FILE))
        handler = logging.FileHandler(self.local_path, mode="a", encoding="utf-8")
        handler.setFormatter(LineFormatter())
        handler.addFilter(_Threshold(self.level))
        self.buffer.setTarget(handler)
        self.buffer.flush()
        self._swap(self.buffer, handler)
        self.file = handler
        if self.remote is not None:
            logging.getLogger(_OURS).info("driver.log: written to %s, uploaded to %s/%s when the run ends",
                                          self.local_path, sweep_dir.rstrip("/"), FILE)

    def close(self) -> None:
        """Detach every handler, restore the loggers; upload the log where the sweep is remote."""
        ours, ray = logging.getLogger(_OURS), logging.getLogger(_RAY)
        for logger in (ours, ray):
            for h in (self.buffer, self.console, self.file):
                if h is not None and h in logger.handlers:
                    logger.removeHandler(h)
        ours.setLevel(self._saved[0])
        ours.propagate = self._saved[1]
        self.buffer.setTarget(None)
        self.buffer.close()
        if self.file is not None:
            self.file.close()
        if self.remote is not None and self.local_path is not None:
            self._upload()

    def _swap(self, old: logging.Handler, new: logging.Handler) -> None:
        for name in (_OURS, _RAY):
            logger = logging.getLogger(name)
            if old in logger.handlers:
                logger.removeHandler(old)
                logger.addHandler(new)

    def _upload(self) -> None:
        fs, path = self.remote  # type: ignore[misc]
        try:
            with open(self.local_path, "rb") as f:  # type: ignore[arg-type]
                new = f.read()
            before = store_fs.read_bytes(fs, path) or b""  # type: ignore[arg-type]
            store_fs.write_atomic(fs, path, lambda out: out.write(before + new))  # type: ignore[arg-type]
            os.unlink(self.local_path)  # type: ignore[arg-type]
        except OSError as exc:  # the sweep's results are written; a log that cannot go up must not fail it
            print(f"alignsweep: warning: driver.log not uploaded ({exc}); it stays at {self.local_path}",
                  file=sys.stderr)

    def __enter__(self) -> "DriverLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
