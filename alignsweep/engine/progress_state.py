"""What a running sweep has done and has left, and the words for it: no Ray, no rich, no clock of its own.

Why a module of its own: the live panel, the plain timestamped lines and `driver.log` all say the same
things (a trial's step of its total, what its last evaluation scored against its base, why it
stopped, the sweep's ETA), so they read them from one place; and the ETA and wording are tested
without starting a sweep (every method takes `now`).

The ETA is steps left over the steps per second this session has trained (all running trials
together, evaluations included, since they slow the steps down): steps left is each unfinished
trial's planned total minus its step, so a trial stopped early drops its remaining steps at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from alignsweep.evaluators.benchmarks import METRIC_CATALOG

#: Metrics an event line and the live panel show, in catalog order: (name, label).
SHOWN = tuple((m.name, m.label) for m in METRIC_CATALOG if m.summary)
#: The same metrics' narrow column headers (the live panel's).
SHOWN_SHORT = tuple((m.name, m.short) for m in METRIC_CATALOG if m.summary)
SCREEN = "screen_"
RUNNING, FINISHED, STOPPED, FAILED, PENDING = "running", "finished", "stopped early", "failed", "pending"
ENDED = (FINISHED, STOPPED, FAILED)


def format_duration(seconds: float) -> str:
    """`45 s`, `12 min`, `1 h 05 min`: precise enough for a sweep, short enough for one line."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def format_value(name: str, value: Any) -> str:
    """A rate (`safe_rate`, `over_refusal_rate`) as a percentage, anything else to two decimals."""
    if not isinstance(value, (int, float)) or math.isnan(value):
        return "–"
    return f"{100 * value:.1f}%" if name.endswith("_rate") else f"{value:.2f}"


def describe_scores(result: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    """`safe rate 81.2% (base 90.0%), over-refusal 3.1% (base 2.0%), BBQ accuracy 0.62 …`.

    A full evaluation shows the catalog's summary metrics; a screen (the alignment stopper's subset)
    shows its `screen_*` ones, each with its base on the same items (value minus `…_delta`).
    """
    base = base or {}
    parts = []
    screened = not any(isinstance(result.get(name), (int, float)) for name, _ in SHOWN)
    for name, label in SHOWN:
        key = SCREEN + name if screened else name
        value = result.get(key)
        if not isinstance(value, (int, float)) or math.isnan(value):
            continue  # not scored, or undefined (a bias where every answer was "unknown")
        ref = base.get(name) if not screened else None
        delta = result.get(f"{key}_delta")
        if screened and isinstance(delta, (int, float)) and not math.isnan(delta):
            ref = value - delta
        text = f"{label} {format_value(name, value)}"
        if isinstance(ref, (int, float)) and not math.isnan(ref):
            text += f" (base {format_value(name, ref)})"
        parts.append(text)
    if not parts:
        return ""
    return ("screen: " if screened else "") + ", ".join(parts)


def is_evaluation(result: dict[str, Any]) -> bool:
    """Whether a reported result carries an evaluation (full or screen), not just the training loss."""
    return any(isinstance(result.get(n), (int, float)) or isinstance(result.get(SCREEN + n), (int, float))
               for n, _ in SHOWN)


@dataclass
class TrialProgress:
    """One trial as the driver has seen it."""

    name: str
    planned: int | None  # steps the plan asks for (None with a length in epochs, until it reports)
    status: str = PENDING
    step: int = 0
    total: int | None = None  # what the trial itself reports (`total_steps`)
    session_start_step: int = 0  # where it (re)started in this driver session: steps before it are not this session's
    evaluations: int = 0
    started_at: float | None = None
    last: dict[str, Any] = field(default_factory=dict)

    def steps_total(self) -> int | None:
        return self.total if self.total is not None else self.planned


class SweepProgress:
    """Every trial's progress, the bases' scores, the ETA; each event method returns its line's text."""

    def __init__(self, name: str, planned: dict[str, int | None], now: float) -> None:
        self.name = name
        self.trials = {k: TrialProgress(k, v) for k, v in planned.items()}
        self.bases: dict[str, dict[str, Any]] = {}
        self.base_of: dict[str, str] = {}  # trial → its base model
        self.began = now
        self.first_start: float | None = None
        self.evaluations = 0

    # ---------------------------------------------------------------- counts and the ETA

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in (RUNNING, FINISHED, STOPPED, FAILED, PENDING)}
        for t in self.trials.values():
            out[t.status] += 1
        return out

    def steps(self) -> tuple[int, int | None]:
        """(steps done, steps planned): an ended trial's total is where it ended; None while a total is unknown."""
        done, planned, unknown = 0, 0, False
        for t in self.trials.values():
            done += t.step
            total = t.step if t.status in ENDED else t.steps_total()
            if total is None:
                unknown = True
            else:
                planned += max(total, t.step)
        return done, None if unknown else planned

    def eta_seconds(self, now: float) -> float | None:
        """Seconds until every trial has ended, at this session's steps per second; None before any step."""
        done, planned = self.steps()
        trained = sum(max(0, t.step - t.session_start_step) for t in self.trials.values())
        if planned is None or self.first_start is None or trained <= 0 or now <= self.first_start:
            return None
        return (planned - done) / (trained / (now - self.first_start))

    def status_text(self, now: float) -> str:
        """`3/8 trials done, 2 running, 12 evaluations, steps 340/800, ETA ~12 min`."""
        c = self.counts()
        ended = c[FINISHED] + c[STOPPED] + c[FAILED]
        done, planned = self.steps()
        eta = self.eta_seconds(now)
        parts = [f"{ended}/{len(self.trials)} trials done", f"{c[RUNNING]} running",
                 f"{self.evaluations} evaluations", f"steps {done}/{planned if planned is not None else '?'}"]
        if ended == len(self.trials):
            parts.append(f"took {format_duration(now - self.began)}")
        else:
            parts.append(f"ETA ~{format_duration(eta)}" if eta is not None else "ETA –")
        return ", ".join(parts)

    # ---------------------------------------------------------------- events

    def base_scored(self, model: str, scores: dict[str, Any], seconds: float) -> str:
        self.bases[model] = scores
        self.evaluations += 1
        return f"base {model} scored in {format_duration(seconds)}: {describe_scores(scores) or 'no scores'}"

    def _trial(self, name: str) -> TrialProgress:
        return self.trials.setdefault(name, TrialProgress(name, None))

    def start(self, name: str, now: float, base_model: str | None = None, result: dict[str, Any] | None = None) -> str:
        t = self._trial(name)
        if base_model:
            self.base_of[name] = base_model
        was = t.status
        t.status, t.started_at = RUNNING, now
        self._absorb(t, result or {})
        t.session_start_step = t.step
        self.first_start = self.first_start if self.first_start is not None else now
        if t.step:
            return f"trial {name} resumed at step {self._at(t)}"
        return f"trial {name} {'restarted' if was == FAILED else 'started'}"

    def result(self, name: str, result: dict[str, Any], now: float) -> str:
        t = self._trial(name)
        if t.status == PENDING:  # a result before its start event (a restored driver): it is running
            t.status = RUNNING
        self._absorb(t, result)
        scores = describe_scores(result, self.bases.get(self.base_of.get(name, ""), None))
        what = "evaluated" if is_evaluation(result) else "trained to"
        if is_evaluation(result):
            t.evaluations += 1
            self.evaluations += 1
        loss = result.get("loss")
        details = ", ".join(x for x in (f"loss {loss:.3f}" if isinstance(loss, (int, float)) else "", scores) if x)
        return f"trial {name} {what} step {self._at(t)}" + (f": {details}" if details else "") + self._tail(now)

    def complete(self, name: str, result: dict[str, Any] | None, reason: str | None, now: float) -> str:
        """A trial that ended without an error: `finished`, or `stopped early … (reason)` short of its total."""
        t = self._trial(name)
        self._absorb(t, result or {})
        total = t.steps_total()
        took = f" in {format_duration(now - t.started_at)}" if t.started_at is not None else ""
        if total is not None and t.step < total:
            t.status = STOPPED
            why = reason or "the scheduler stopped it"
            return f"trial {name} stopped early at step {self._at(t)}{took} ({why})" + self._tail(now)
        t.status = FINISHED
        return f"trial {name} finished step {self._at(t)}{took}" + self._tail(now)

    def ended_before(self, name: str, result: dict[str, Any] | None) -> None:
        """A trial that ended in an earlier driver session (a resume): counted as done, not as this session's steps."""
        t = self._trial(name)
        self._absorb(t, result or {})
        t.session_start_step = t.step
        total = t.steps_total()
        t.status = STOPPED if total is not None and t.step < total else FINISHED

    def error(self, name: str, message: str, now: float) -> str:
        t = self._trial(name)
        t.status = FAILED
        return f"trial {name} failed at step {self._at(t)}: {message}" + self._tail(now)

    def retrying(self, name: str, message: str) -> str:
        t = self._trial(name)
        return f"trial {name} failed at step {self._at(t)}, retrying from its last checkpoint: {message}"

    def end(self, now: float) -> str:
        c = self.counts()
        left = c[PENDING] + c[RUNNING]
        return (f"sweep {self.name} ended in {format_duration(now - self.began)}: {c[FINISHED]} finished, "
                f"{c[STOPPED]} stopped early, {c[FAILED]} failed" + (f", {left} not run to the end" if left else ""))

    def _absorb(self, t: TrialProgress, result: dict[str, Any]) -> None:
        step, total = result.get("step"), result.get("total_steps")
        if isinstance(step, (int, float)):
            t.step = int(step)
        if isinstance(total, (int, float)):
            t.total = int(total)
        if result:
            t.last = result

    def _at(self, t: TrialProgress) -> str:
        total = t.steps_total()
        return f"{t.step}/{total if total is not None else '?'}"

    def _tail(self, now: float) -> str:
        return f" | {self.status_text(now)}"
