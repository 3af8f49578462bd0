"""What the user sees while a sweep runs: a live rich panel on a terminal, timestamped lines elsewhere,
and a summary table at the end.

Driven by Tune's callbacks in the driver, so it reflects the scheduler's decisions as they happen:
each trial's step of its total, its last evaluation against its base, why it stopped, and the sweep's
ETA (`progress_state`). Every event is also a log record on `alignsweep.sweep`: `driver.log` gets it
whatever the display, and with `--progress plain` (the default where stdout is not a terminal:
`kubectl logs`, CI, `| tee`) it is the display, one flushed line per event.

Why the callback holds no display: Tune pickles callbacks into the experiment state and `resume`
restores them from there, so the restored callback would be the first run's. It forwards to the
display bound for this driver session (`showing`) instead, with the scheduler's `stop_reasons` (that
dict travels in the same pickle as the scheduler, so it stays the scheduler's own after a resume).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Any, Iterator

from ray.tune import Callback
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from alignsweep.engine.progress_state import (FAILED, FINISHED, RUNNING, SHOWN_SHORT, STOPPED, SweepProgress,
                                              format_value)
from alignsweep.evaluators.benchmarks import METRIC_CATALOG

SHOWN_METRICS = tuple(m.name for m in METRIC_CATALOG if m.summary)
EVENTS = logging.getLogger("alignsweep.sweep")
_PANEL_ROWS = 12  # running trials drawn in the live panel; the rest are counted


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _better(a: float, b: float, mode: str) -> bool:
    return a < b if mode == "min" else a > b


class SweepDisplay:
    """One driver session's view of the sweep: the state, the log lines, and the live panel when `live`."""

    def __init__(self, progress: SweepProgress, console: Console | None, mode: str, metric: str, metric_mode: str) -> None:
        self.progress, self.console, self.mode = progress, console, mode
        self.metric, self.metric_mode = metric, metric_mode
        self.best: tuple[float, str] | None = None
        self.live: Live | None = None
        self.synced = False

    def start(self) -> None:
        if self.mode == "live" and self.console is not None and self.live is None:
            self.live = Live(self.render(), console=self.console, refresh_per_second=2, transient=False)
            self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.update(self.render())
            self.live.stop()
            if not self.console.is_terminal:  # rich ends the panel's line only on a terminal
                self.console.line()
            self.live = None

    def event(self, text: str, level: int = logging.INFO) -> None:
        EVENTS.log(level, text)
        if self.live is not None:
            self.live.update(self.render())

    def render(self) -> Group:
        now = time.time()
        p = self.progress
        c = p.counts()
        line = Text.assemble(
            ("alignsweep ", "bold"), f"{p.name}  {int(now - p.began)}s  ",
            (f"running {c[RUNNING]}  ", "cyan"), (f"done {c[FINISHED]}  ", "green"),
            (f"stopped early {c[STOPPED]}  ", "yellow"), (f"failed {c[FAILED]}  ", "red"),
            f"pending {c['pending']}  of {len(p.trials)}",
        )
        table = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
        table.add_column("trial", no_wrap=True)
        for col in ("step", "evals", "loss", *(short for _, short in SHOWN_SHORT)):
            table.add_column(col, justify="right")
        running = [t for t in p.trials.values() if t.status == RUNNING]
        for t in running[:_PANEL_ROWS]:
            total = t.steps_total()
            table.add_row(t.name, f"{t.step}/{total if total is not None else '?'}", str(t.evaluations),
                          _fmt(t.last.get("loss")), *(format_value(n, t.last.get(n)) for n, _ in SHOWN_SHORT))
        parts: list[Any] = [line, Text(p.status_text(now))]
        if running:
            parts.append(table)
        if len(running) > _PANEL_ROWS:
            parts.append(Text(f"… and {len(running) - _PANEL_ROWS} more running", style="dim"))
        if self.best:
            parts.append(Text(f"best {self.metric} so far: {_fmt(self.best[0])} ({self.best[1]})"))
        return Group(*parts)

    # ---------------------------------------------------------------- Tune's events, forwarded

    def sync(self, trials: list) -> None:
        """Once per session, before the first event: trials that ended before a resume count as done."""
        if self.synced:
            return
        self.synced = True
        before = [t for t in trials if t.status == "TERMINATED" and _name(t) in self.progress.trials]
        for t in before:
            self.progress.ended_before(_name(t), t.last_result)
        if before:
            self.event(f"{len(before)} of {len(self.progress.trials)} trials ended before this resume "
                       f"| {self.progress.status_text(time.time())}")

    def trial_started(self, trial: Any) -> None:
        plan = trial.config.get("plan", {})
        self.event(self.progress.start(_name(trial), time.time(), plan.get("base_model"), trial.last_result))

    def trial_result(self, trial: Any, result: dict[str, Any]) -> None:
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and not math.isnan(value):
            if self.best is None or _better(value, self.best[0], self.metric_mode):
                self.best = (float(value), _name(trial))
        if EVENTS.isEnabledFor(logging.DEBUG):
            EVENTS.debug("trial %s result: %s", _name(trial), _numbers(result))
        self.event(self.progress.result(_name(trial), result, time.time()))

    def trial_complete(self, trial: Any, reason: str | None) -> None:
        self.event(self.progress.complete(_name(trial), trial.last_result, reason, time.time()))

    def trial_error(self, trial: Any) -> None:
        self.event(self.progress.error(_name(trial), _error_line(trial), time.time()), logging.WARNING)

    def trial_recover(self, trial: Any) -> None:
        self.event(self.progress.retrying(_name(trial), _error_line(trial)), logging.WARNING)

    def experiment_end(self) -> None:
        self.event(self.progress.end(time.time()))
        self.stop()


_CURRENT: SweepDisplay | None = None


@contextlib.contextmanager
def showing(display: SweepDisplay) -> Iterator[SweepDisplay]:
    """Bind `display` for this driver session: every ProgressCallback (new or restored) reports to it."""
    global _CURRENT
    _CURRENT = display
    display.start()
    try:
        yield display
    finally:
        display.stop()
        _CURRENT = None


class ProgressCallback(Callback):
    """Forwards Tune's trial events to the session's display; holds only the scheduler's stop reasons."""

    def __init__(self, stop_reasons: dict[str, str] | None = None) -> None:
        self.stop_reasons = stop_reasons if stop_reasons is not None else {}

    def __setstate__(self, state: dict[str, Any]) -> None:  # a sweep started before this class held only this
        self.stop_reasons = state.get("stop_reasons", {})

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if _CURRENT is not None and not _CURRENT.synced:
            _CURRENT.sync(trials)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _CURRENT is not None:
            _CURRENT.sync(trials)
            _CURRENT.trial_started(trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if _CURRENT is not None:
            _CURRENT.trial_result(trial, result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _CURRENT is not None:
            _CURRENT.trial_complete(trial, self.stop_reasons.get(_name(trial)))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _CURRENT is not None:
            _CURRENT.trial_error(trial)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _CURRENT is not None:
            _CURRENT.trial_recover(trial)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if _CURRENT is not None:
            _CURRENT.experiment_end()


def _name(trial: Any) -> str:
    return trial.config.get("plan", {}).get("variant_id", str(trial))


def _numbers(result: dict[str, Any]) -> str:
    """A result's numbers, for the debug line (Tune's bookkeeping keys left out)."""
    skip = {"timestamp", "time_this_iter_s", "time_total_s", "pid", "time_since_restore", "iterations_since_restore",
            "training_iteration", "reported_at", "date", "hostname", "node_ip", "done"}
    return " ".join(f"{k}={_fmt(v)}" for k, v in sorted(result.items())
                    if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool))


def _error_line(trial: Any) -> str:
    """The last line of the trial's error file (`RuntimeError: …`): the why, without the traceback."""
    try:
        with open(trial.error_file, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        return (lines[-1] if lines else "error")[:300]
    except (OSError, TypeError):
        return "error (see the trial's error.txt)"


def summary_table(rows: list[dict[str, Any]], metric: str, mode: str) -> Table:
    """One line per trial, best first on the scheduler's metric."""
    def key(row: dict[str, Any]) -> float:
        value = row.get(metric)
        if not isinstance(value, (int, float)) or math.isnan(value):
            return math.inf
        return value if mode == "min" else -value

    shown = [m for m in SHOWN_METRICS if any(m in r for r in rows)]
    table = Table(title=f"sweep summary ({len(rows)} trials, sorted by {metric} {mode})")
    for col in ("trial", "model", "method", "lr", "status", "steps", "loss", *shown):
        table.add_column(col, justify="right" if col not in ("trial", "model", "method", "status") else "left")
    for row in sorted(rows, key=key):
        steps = f"{_fmt(row.get('steps'))}/{_fmt(row.get('total_steps'))}"
        status = row["status"]
        if status == "TERMINATED" and row.get("steps") and row.get("total_steps") and row["steps"] < row["total_steps"]:
            status = "STOPPED EARLY"
        table.add_row(row["trial_id"], row["base_model"], row["method"], _fmt(row["learning_rate"]), status, steps,
                      _fmt(row.get("loss")), *(_fmt(row.get(m)) for m in shown))
    return table
