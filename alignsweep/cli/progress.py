"""`audit`'s progress: items scored of each benchmark's items, as rich bars on a terminal or as
timestamped lines where stdout is a log (`| tee`, CI), the same choice `run --progress` makes.

Fed by `Evaluator.evaluate(progress=…)`, which reports each benchmark's start, its inference batches
as items, and its end.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Iterator

from alignsweep.logs import utc_stamp

#: `--progress` choices: `auto` is `live` on a terminal, `plain` otherwise.
PROGRESS_CHOICES = ("auto", "live", "plain", "none")


def resolve_mode(choice: str, stream: Any = None) -> str:
    """`auto` → `live` on a terminal, `plain` otherwise; any other choice as given."""
    if choice != "auto":
        return choice
    stream = stream if stream is not None else sys.stdout
    return "live" if stream.isatty() else "plain"


class ItemsProgress:
    """Per-benchmark progress of one or more evaluations; call it as `progress(benchmark, scored, items)`.

    Plain lines: one when a benchmark starts, one at least `every_s` apart while it runs, one when it
    is done (with its time), each flushed at once.
    """

    def __init__(self, mode: str, stream: Any = None, every_s: float = 10.0) -> None:
        self.mode, self.every_s = mode, every_s
        self.stream = stream if stream is not None else sys.stdout
        self.label = ""
        self.bars: Any = None
        self.tasks: dict[str, Any] = {}
        self.began: dict[str, float] = {}
        self.last_line: dict[str, float] = {}

    @contextlib.contextmanager
    def evaluating(self, label: str) -> Iterator["ItemsProgress"]:
        """One evaluation (`audit:<base>` or `audit:<adapter>`): its benchmarks' bars or lines carry `label`."""
        self.label, self.tasks = label, {}
        if self.mode == "live":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("items"), TimeElapsedColumn(), console=Console(file=self.stream))
            self.bars.start()
        try:
            yield self
        finally:
            if self.bars is not None:
                self.bars.stop()
                self.bars = None

    def __call__(self, benchmark: str, scored: int, items: int) -> None:
        now = time.time()
        if self.mode == "live" and self.bars is not None:
            if benchmark not in self.tasks:
                self.tasks[benchmark] = self.bars.add_task(f"{self.label} {benchmark}", total=items)
            self.bars.update(self.tasks[benchmark], completed=scored)
        elif self.mode == "plain":
            if scored == 0:
                self.began[benchmark] = self.last_line[benchmark] = now
                self._line(benchmark, f"0/{items} items")
            elif scored >= items:
                took = now - self.began.get(benchmark, now)
                self._line(benchmark, f"{scored}/{items} items, done in {took:.1f} s")
            elif now - self.last_line.get(benchmark, 0.0) >= self.every_s:
                self.last_line[benchmark] = now
                self._line(benchmark, f"{scored}/{items} items")

    def _line(self, benchmark: str, text: str) -> None:
        print(f"{utc_stamp()} {self.label} {benchmark}: {text}", file=self.stream, flush=True)
