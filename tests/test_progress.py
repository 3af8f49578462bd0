"""Progress you can follow anywhere: the ETA and the event lines (`engine.progress_state`), driver.log
(`engine.driver_log`) at each level, on disk and on S3, audit's per-benchmark lines, and a real sweep
whose piped stdout shows its events while it runs, not only at the end."""

from __future__ import annotations

import logging
import math
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from alignsweep.engine.progress_state import SweepProgress, describe_scores, format_duration, format_value
from test_s3 import s3  # noqa: F401  (the moto S3 fixture)

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


# ---------------------------------------------------------------- wording and the ETA


def test_durations_and_values_read_as_people_write_them() -> None:
    assert [format_duration(s) for s in (0, 44.6, 61, 719, 3600, 3900, -5)] == \
        ["0 s", "45 s", "1 min", "12 min", "1 h 00 min", "1 h 05 min", "0 s"]
    assert format_value("safe_rate", 0.8125) == "81.2%" and format_value("accuracy", 0.617) == "0.62"
    assert format_value("bias_ambig", math.nan) == "–" and format_value("safe_rate", None) == "–"


def test_scores_show_their_base_and_a_screen_its_base_on_the_same_items() -> None:
    full = {"safe_rate": 0.812, "over_refusal_rate": 0.031, "accuracy": 0.62, "bias_ambig": 0.08,
            "bias_disambig": math.nan}
    base = {"safe_rate": 0.9, "over_refusal_rate": 0.02, "accuracy": 0.6, "bias_ambig": 0.05}
    assert describe_scores(full, base) == ("safe rate 81.2% (base 90.0%), over-refusal 3.1% (base 2.0%), "
                                           "BBQ accuracy 0.62 (base 0.60), bias (ambiguous) 0.08 (base 0.05)")
    screen = {"screen_safe_rate": 0.68, "screen_safe_rate_delta": -0.22, "screen_bias_ambig": 0.1}
    assert describe_scores(screen, base) == "screen: safe rate 68.0% (base 90.0%), bias (ambiguous) 0.10"
    assert describe_scores({"loss": 2.0}, base) == ""


def test_eta_counts_this_sessions_steps_and_drops_a_stopped_trials_rest() -> None:
    p = SweepProgress("s", {"a": 100, "b": 100, "c": None}, now=0.0)
    assert p.eta_seconds(5.0) is None  # nothing trained yet
    p.start("a", 0.0)
    p.start("b", 0.0)
    p.result("a", {"step": 50, "total_steps": 100}, 10.0)
    assert p.eta_seconds(10.0) is None  # c's length (epochs) is unknown until it reports
    p.result("c", {"step": 0, "total_steps": 100}, 10.0)
    p.result("b", {"step": 50, "total_steps": 100}, 10.0)
    assert p.steps() == (100, 300) and p.eta_seconds(10.0) == pytest.approx(20.0)  # 200 left at 10 steps/s
    line = p.complete("b", {"step": 50, "total_steps": 100}, "alignment: screen safe rate -22.0 points vs base", 10.0)
    assert line.startswith("trial b stopped early at step 50/100 in 10 s (alignment: screen safe rate -22.0 points")
    assert p.steps() == (100, 250) and p.eta_seconds(10.0) == pytest.approx(15.0)  # b's 50 remaining steps dropped
    assert line.endswith("| 1/3 trials done, 2 running, 0 evaluations, steps 100/250, ETA ~15 s")

    after = SweepProgress("s", {"done": 100, "cut": 100, "left": 100}, now=0.0)  # a resume: two ended before it
    after.ended_before("done", {"step": 100, "total_steps": 100})
    after.ended_before("cut", {"step": 40, "total_steps": 100})
    after.start("left", 0.0)
    after.result("left", {"step": 10, "total_steps": 100}, 10.0)
    assert after.counts()["finished"] == 1 and after.counts()["stopped early"] == 1
    assert after.eta_seconds(10.0) == pytest.approx(90.0)  # 90 left at 1 step/s: earlier sessions' steps excluded

    resumed = SweepProgress("s", {"a": 100}, now=0.0)  # a driver that resumes a trial at step 60
    assert resumed.start("a", 0.0, "tiny:llama", {"step": 60, "total_steps": 100}) == "trial a resumed at step 60/100"
    resumed.result("a", {"step": 80, "total_steps": 100}, 10.0)
    assert resumed.eta_seconds(10.0) == pytest.approx(10.0)  # 20 steps in 10 s this session; 20 left


def test_event_lines_name_the_trial_its_step_scores_and_why_it_ended() -> None:
    p = SweepProgress("demo", {"lora-a": 200, "ia3-b": 200}, now=0.0)
    assert p.base_scored("tiny:llama", {"safe_rate": 0.9, "accuracy": 0.6}, 12.0) == \
        "base tiny:llama scored in 12 s: safe rate 90.0%, BBQ accuracy 0.60"
    assert p.start("lora-a", 1.0, "tiny:llama") == "trial lora-a started"
    line = p.result("lora-a", {"step": 50, "total_steps": 200, "loss": 1.5, "safe_rate": 0.812}, 11.0)
    assert line.startswith("trial lora-a evaluated step 50/200: loss 1.500, safe rate 81.2% (base 90.0%) | "
                           "0/2 trials done, 1 running, 2 evaluations, steps 50/400, ETA ~1 min")
    assert p.result("lora-a", {"step": 100, "total_steps": 200, "loss": 1.2}, 21.0).startswith(
        "trial lora-a trained to step 100/200: loss 1.200 |")  # no evaluation in this report
    assert p.complete("lora-a", {"step": 200, "total_steps": 200}, None, 61.0).startswith(
        "trial lora-a finished step 200/200 in 1 min |")
    p.start("ia3-b", 61.0)
    assert p.error("ia3-b", "RuntimeError: CUDA out of memory", 62.0).startswith(
        "trial ia3-b failed at step 0/200: RuntimeError: CUDA out of memory |")
    assert p.end(62.0) == "sweep demo ended in 1 min: 1 finished, 0 stopped early, 1 failed"


def test_live_panel_shows_each_running_trials_step_evaluations_and_the_eta() -> None:
    import io

    from rich.console import Console

    from alignsweep.engine.progress import SweepDisplay

    p = SweepProgress("demo", {"llama-lora-abb46f44": 200, "llama-ia3-abfe5545": 200}, now=time.time() - 20)
    p.start("llama-lora-abb46f44", time.time() - 20, "tiny:llama")
    p.start("llama-ia3-abfe5545", time.time() - 20, "tiny:llama")
    p.result("llama-lora-abb46f44", {"step": 50, "total_steps": 200, "loss": 1.5, "safe_rate": 0.812}, time.time())
    console = Console(file=io.StringIO(), width=100, record=True)
    console.print(SweepDisplay(p, console, "live", "loss", "min").render())
    text = console.export_text()
    assert re.search(r"llama-lora-abb46f44\s+50/200\s+1\s+1\.5\s+81\.2%", text), text
    assert re.search(r"llama-ia3-abfe5545\s+0/200\s+0", text), text
    assert "0/2 trials done, 2 running, 1 evaluations, steps 50/400, ETA ~2 min" in text, text  # 350 left, 2.5/s


# ---------------------------------------------------------------- driver.log


def _log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_driver_log_waits_for_the_claimed_directory_appends_and_follows_the_level(tmp_path: Path) -> None:
    from alignsweep.engine.driver_log import DriverLog

    events, ray_log = logging.getLogger("alignsweep.sweep"), logging.getLogger("ray.tune")
    sweep = tmp_path / "s"
    with DriverLog("info"):  # bad input: the directory is never claimed, nothing is written
        events.info("never written")
    assert not sweep.exists()

    sweep.mkdir()
    with DriverLog("info") as log:
        events.info("before the directory was claimed")  # buffered, then written first
        log.open(str(sweep))
        events.debug("debug detail")
        events.info("trial x started")
        ray_log.info("ray chatter")
        ray_log.warning("ray warning")
    lines = _log_lines(sweep / "driver.log")
    assert [re.sub(STAMP, "T", line) for line in lines] == [
        "T before the directory was claimed", "T trial x started", "T WARNING ray.tune: ray warning"]

    with DriverLog("debug") as log:  # a resume appends; debug adds our detail, not Ray's
        log.open(str(sweep))
        events.debug("debug detail")
        ray_log.info("ray chatter")
    assert [re.sub(STAMP, "T", line) for line in _log_lines(sweep / "driver.log")[3:]] == [
        "T DEBUG alignsweep.sweep: debug detail"]

    with DriverLog("warning") as log:
        log.open(str(sweep))
        events.info("trial y started")
        events.warning("trial y failed at step 2/4: RuntimeError: boom")
    assert [re.sub(STAMP, "T", line) for line in _log_lines(sweep / "driver.log")[4:]] == [
        "T WARNING alignsweep.sweep: trial y failed at step 2/4: RuntimeError: boom"]
    assert logging.getLogger("alignsweep").propagate and not logging.getLogger("alignsweep").handlers  # restored


def test_plain_progress_lines_go_to_the_console_stream_flushed(tmp_path: Path) -> None:
    import io

    from alignsweep.engine.driver_log import DriverLog

    out = io.StringIO()
    with DriverLog("info", console=out):
        logging.getLogger("alignsweep.sweep").info("trial x started")
        logging.getLogger("ray.tune").warning("Ray prints its own warnings to stderr")
    assert re.fullmatch(f"{STAMP} trial x started\n", out.getvalue())


@pytest.mark.slow  # a moto S3 server (no Ray), reused from the S3 sweep test
def test_driver_log_on_object_storage_is_uploaded_and_appended(s3, tmp_path: Path) -> None:
    from alignsweep.engine.driver_log import DriverLog
    from test_s3 import BUCKET

    uri = f"s3://{BUCKET}/logs/s"
    for text in ("first run", "resumed run"):
        with DriverLog("info") as log:
            log.open(uri)
            local = log.local_path
            logging.getLogger("alignsweep.sweep").info(text)
        assert not Path(local).exists()  # uploaded, then removed
    body = s3.get_object(Bucket=BUCKET, Key="logs/s/driver.log")["Body"].read().decode()
    lines = [re.sub(STAMP, "T", line) for line in body.splitlines()]
    assert [line for line in lines if not line.startswith("T driver.log: written to")] == ["T first run", "T resumed run"]


# ---------------------------------------------------------------- audit


def test_audit_plain_progress_counts_items_per_benchmark(cli, tmp_path: Path) -> None:
    run = cli("audit", "--base", "tiny:llama", "--limit", "1", "--results", tmp_path / "a", "--progress", "plain")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("audit:tiny:llama: "))
    for benchmark in ("safety", "over_refusal", "fairness"):
        start = next(i for i, line in enumerate(lines)
                     if re.fullmatch(f"{STAMP} audit:tiny:llama {benchmark}: 0/\\d+ items", line))
        n = re.search(r"0/(\d+) items", lines[start]).group(1)
        end = next(i for i, line in enumerate(lines)
                   if re.fullmatch(f"{STAMP} audit:tiny:llama {benchmark}: {n}/{n} items, done in [0-9.]+ s", line))
        assert start < end < summary

    import io

    from alignsweep.cli.progress import ItemsProgress

    quiet, plain = io.StringIO(), io.StringIO()
    for mode, stream in (("none", quiet), ("plain", plain)):
        shown = ItemsProgress(mode, stream, every_s=0.0)
        with shown.evaluating("audit:x"):
            for scored in (0, 3, 2, 10):
                shown("safety", scored, 10)
    assert quiet.getvalue() == ""  # --progress none
    assert [re.sub(STAMP, "T", line) for line in plain.getvalue().splitlines()] == [
        "T audit:x safety: 0/10 items", "T audit:x safety: 3/10 items", "T audit:x safety: 2/10 items",
        "T audit:x safety: 10/10 items, done in 0.0 s"]


def test_inference_batches_report_their_progress_only_where_someone_listens(tiny_paths) -> None:
    from alignsweep.inference.generation import generate_from_prompts
    from alignsweep.inference.loglik import score_choices
    from alignsweep.inference.progress_hook import reporting
    from alignsweep.models.loading import load_model, load_tokenizer

    path = str(tiny_paths["llama"])
    model, tok = load_model(path), load_tokenizer(path)
    requests = [(f"Question {i}: who?", choice) for i in range(5) for choice in (" A", " B", " unknown")]
    requests.append(("Hi", " x"))  # a lone request: the reference path inside shared_prefix
    for method in ("shared_prefix", "reference"):
        calls: list[tuple[int, int]] = []
        with reporting(lambda done, total: calls.append((done, total))):
            scored = score_choices(model, tok, requests, batch_size=4, method=method)
        assert len(calls) >= 2 and calls[-1] == (len(requests), len(requests)), (method, calls)
        assert [d for d, _ in calls] == sorted(d for d, _ in calls)
        assert scored == score_choices(model, tok, requests, batch_size=4, method=method)  # no listener: same scores
    calls = []
    with reporting(lambda done, total: calls.append((done, total))):
        generate_from_prompts(model, tok, [f"Say {i}" for i in range(5)], max_new_tokens=2, batch_size=2)
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_auto_progress_is_live_on_a_terminal_and_plain_elsewhere() -> None:
    import io

    from alignsweep.cli.progress import resolve_mode

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert resolve_mode("auto", Terminal()) == "live" and resolve_mode("auto", io.StringIO()) == "plain"
    assert [resolve_mode(m, Terminal()) for m in ("live", "plain", "none")] == ["live", "plain", "none"]


# ---------------------------------------------------------------- a real sweep, piped


SPEC = """\
name: piped
seed: 3
models: [tiny:llama]
methods: {lora: {r: [2]}}
training: {max_steps: 4, eval_interval: 2, batch_size: 4, max_examples: 16, max_seq_length: 64,
           learning_rates: [1.0e-2, 1.0e-3]}
scheduler: {name: none}
resources: {cpu: 1, max_concurrent: 1}
evaluation:
  safety: {limit: 1, max_new_tokens: 8}
  fairness: {limit: 2}
  over_refusal: {limit: 1}
"""


@pytest.mark.slow
def test_piped_sweep_prints_each_event_while_it_runs_and_logs_them(tmp_path: Path) -> None:
    import os

    spec = tmp_path / "piped.yaml"
    spec.write_text(SPEC)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "RAY_ADDRESS")}
    proc = subprocess.Popen([sys.executable, "-m", "alignsweep.cli.main", "run", str(spec), "--results",
                             str(tmp_path / "r"), "--num-cpus", "2", "--log-level", "debug"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                            cwd=Path(__file__).resolve().parents[1], start_new_session=True)
    seen: list[tuple[str, float]] = []  # (line, when it arrived)

    def read() -> None:
        for line in proc.stdout:
            seen.append((line.rstrip("\n"), time.monotonic()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=600)
        exited = time.monotonic()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
    reader.join(timeout=10)
    out = "\n".join(line for line, _ in seen)
    assert proc.returncode == 0, out[-3000:]
    # The first trial's lines arrived while the driver still had the second trial to run (max_concurrent 1),
    # many seconds before it exited: flushed as they happen. Buffered output would arrive all at the exit.
    first = next(when for line, when in seen if re.match(f"{STAMP} trial .* started", line))
    assert exited - first > 5, out[-3000:]
    trials = sorted(set(re.findall(r"trial (llama-lora-\w+) started", out)))
    assert len(trials) == 2
    for t in trials:
        for event in (f"trial {t} started", f"trial {t} evaluated step 2/4: loss ", f"trial {t} evaluated step 4/4",
                      f"trial {t} finished step 4/4"):
            assert re.search(f"^{STAMP} {re.escape(event)}", out, re.M), (event, out[-3000:])
    assert re.search(r"ETA ~\d+ (s|min)", out) and "took " in out
    log = (tmp_path / "r" / "piped" / "driver.log").read_text()
    for t in trials:
        assert re.search(f"^{STAMP} trial {t} finished step 4/4", log, re.M)
        assert re.search(f"^{STAMP} DEBUG alignsweep.sweep: trial {t} result: .*loss=", log, re.M)  # --log-level debug
    assert re.search(f"^{STAMP} sweep piped ended in .*: 2 finished, 0 stopped early, 0 failed$", log, re.M)
