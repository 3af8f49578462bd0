"""What the user sees while a sweep runs: a live rich panel, then a summary table.

Driven by Tune's callbacks in the driver, so it reflects the scheduler's decisions as they happen:
running, done, stopped early, failed, and the best trial so far on the scheduler's metric.
"""

from __future__ import annotations

import math
import time
import weakref
from typing import Any

from ray.tune import Callback
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from alignsweep.evaluators.benchmarks import METRIC_CATALOG

SHOWN_METRICS = tuple(m.name for m in METRIC_CATALOG if m.summary)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _better(a: float, b: float, mode: str) -> bool:
    return a < b if mode == "min" else a > b


class ProgressCallback(Callback):
    def __init__(self, console: Console, total: int, metric: str, mode: str) -> None:
        self.console, self.total, self.metric, self.mode = console, total, metric, mode
        self.state: dict[str, str] = {}
        self.best: tuple[float, str] | None = None
        self.started = time.time()
        self.live: Live | None = None

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks with its experiment state
        return {**self.__dict__, "console": None, "live": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.console = Console(emoji=False)

    def setup(self, **info: Any) -> None:
        self.live = Live(self._render(), console=self.console, refresh_per_second=2, transient=False)
        self.live.start()
        _SHOWING.add(self)

    def close(self) -> None:
        """End the panel (a sweep that ends by an exception never reaches `on_experiment_end`)."""
        if self.live is not None:
            self.live.stop()
            if not self.console.is_terminal:  # rich ends the panel's line only on a terminal
                self.console.line()
            self.live = None
        _SHOWING.discard(self)

    def _name(self, trial: Any) -> str:
        return trial.config.get("plan", {}).get("variant_id", str(trial))

    def _render(self) -> Group:
        counts = {k: sum(1 for v in self.state.values() if v == k) for k in ("running", "done", "stopped early", "failed")}
        pending = self.total - len(self.state)
        line = Text.assemble(
            ("alignsweep ", "bold"),
            f"{int(time.time() - self.started)}s  ",
            (f"running {counts['running']}  ", "cyan"),
            (f"done {counts['done']}  ", "green"),
            (f"stopped early {counts['stopped early']}  ", "yellow"),
            (f"failed {counts['failed']}  ", "red"),
            f"pending {pending}  of {self.total}",
        )
        best = Text(f"best {self.metric} so far: {_fmt(self.best[0])} ({self.best[1]})" if self.best else "")
        return Group(line, best)

    def _update(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.state[self._name(trial)] = "running"
        self._update()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and not math.isnan(value):
            if self.best is None or _better(value, self.best[0], self.mode):
                self.best = (float(value), self._name(trial))
        self._update()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        early = last.get("step") is not None and last.get("total_steps") and last["step"] < last["total_steps"]
        self.state[self._name(trial)] = "stopped early" if early else "done"
        self._update()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.state[self._name(trial)] = "failed"
        self._update()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self.live is not None:
            self.live.update(self._render())
        self.close()


_SHOWING: "weakref.WeakSet[ProgressCallback]" = weakref.WeakSet()


def close_panels() -> None:
    """End every live panel still showing, so a final error line starts on a line of its own."""
    for callback in list(_SHOWING):
        callback.close()


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
