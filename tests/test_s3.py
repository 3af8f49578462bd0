"""Results on object storage: a real sweep with `--results s3://…` against moto's S3 server (a real HTTP
server on 127.0.0.1, reached by pyarrow's S3 client in the driver, the Ray workers and Ray Tune's
storage layer through `AWS_ENDPOINT_URL`), then `query`, `report`, a SIGKILLed driver and `resume`.

What must hold: every table and Tune's own state land in the bucket (nothing on the local disk stands
in for it), the sweep finishes after the kill with no duplicate row and no trial rerun, and the
`checkpoint` column names a URI that `audit --adapter` can score.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest

from test_faults import REPO, cli, finish, reap, wait_for

pytestmark = pytest.mark.slow

BUCKET, PREFIX, NAME = "alignsweep-test", "runs/v1", "s3sweep"
SPEC = """\
name: s3sweep
seed: 5
models: [tiny:llama]
methods: {lora: {r: [2]}, ia3: {}}
training: {max_steps: 4, eval_interval: 2, batch_size: 4, max_examples: 16, max_seq_length: 64,
           learning_rates: [1.0e-2]}
scheduler: {name: none}
resources: {cpu: 1, max_concurrent: 1}
failure: {max_retries: 1}
evaluation:
  safety: {limit: 1, max_new_tokens: 8}
  fairness: {limit: 2}
  over_refusal: {limit: 1}
  utility: {limit: 1}
"""
TRIALS = 2  # lora + ia3, one grid point each


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's S3 server on a free loopback port, one bucket, and the AWS variables every process inherits."""
    boto3 = pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = _free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client
    finally:
        server.stop()


def keys(client: Any, prefix: str) -> dict[str, tuple[str, str]]:
    """key → (ETag, LastModified) of every object under `prefix`, straight from the S3 server."""
    out: dict[str, tuple[str, str]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        out.update({o["Key"]: (o["ETag"], str(o["LastModified"])) for o in page.get("Contents", [])})
    return out


def query(uri: str, sql: str) -> list[tuple]:
    from alignsweep.analysis.views import run_query

    return [tuple(r.values()) for r in run_query([uri], sql).to_pylist()]


def terminated(client: Any, uri: str) -> set[str]:
    """Trials finished in the S3 store *and* in Tune's experiment state uploaded there (what resume reads)."""
    from alignsweep.errors import InputError

    try:
        done = {t for t, in query(uri, "SELECT trial_id FROM trials WHERE status = 'TERMINATED' AND method <> 'base'")}
    except (InputError, OSError):
        return set()
    states = sorted(k for k in keys(client, f"{PREFIX}/{NAME}/tune/") if "/experiment_state-" in k)
    if not done or not states:
        return set()
    try:
        body = client.get_object(Bucket=BUCKET, Key=states[-1])["Body"].read()
        trial_data = json.loads(body)["trial_data"]
    except (ValueError, KeyError, client.exceptions.NoSuchKey):
        return set()
    return {t for t in done for data, _ in trial_data if t in data and '"status": "TERMINATED"' in data}


def test_sweep_query_report_kill_and_resume_on_s3(s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from alignsweep.cli.main import main

    spec_path = tmp_path / "s3sweep.yaml"
    spec_path.write_text(SPEC)
    uri = f"s3://{BUCKET}/{PREFIX}/{NAME}"

    # 1. run, SIGKILL the driver once the first trial is finished in the store and in Tune's state
    run = cli("run", str(spec_path), "--results", f"s3://{BUCKET}/{PREFIX}")
    try:
        done_before = wait_for(lambda: terminated(s3, uri), run, timeout=300)
        run.send_signal(signal.SIGKILL)
    finally:
        reap(run)
    assert run.returncode == -signal.SIGKILL
    assert len(done_before) == 1
    (first,) = done_before
    kept = {k: v for k, v in keys(s3, f"{PREFIX}/{NAME}/store/").items() if f"/{first}__" in k}
    assert len(kept) >= 3 * 3  # metrics, safety and fairness items at steps 0, 2 and 4
    assert not (REPO / "results" / NAME).exists()  # nothing went to a local results root

    # 2. resume from the bucket: the sweep finishes, the finished trial is not rerun
    rc, out = finish(cli("resume", uri), timeout=400)
    assert rc == 0, out[-3000:]
    assert f"results: {uri}" in out
    after = keys(s3, f"{PREFIX}/{NAME}/")
    assert {k: v for k, v in after.items() if k in kept} == kept
    assert f"{PREFIX}/{NAME}/manifest.json" in after and f"{PREFIX}/{NAME}/tune/tuner.pkl" in after
    log = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{NAME}/driver.log")["Body"].read().decode()
    assert "sweep s3sweep resumed: 2 trials" in log and "sweep s3sweep ended in " in log  # uploaded when it ended
    assert any("/checkpoint_" in k and k.endswith("adapter_model.safetensors") for k in after)
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{NAME}/manifest.json")["Body"].read())
    assert manifest["finished"] and manifest.get("resumed") is True

    # 3. query the bucket: every trial finished once, no duplicated row in any table
    assert query(uri, "SELECT method, status, steps FROM trials ORDER BY method") == [
        ("base", "TERMINATED", 0), ("ia3", "TERMINATED", 4), ("lora", "TERMINATED", 4)]
    for table, key in (("trials", "trial_id"), ("metrics", "trial_id, step, benchmark, category, metric"),
                       ("safety_items", "trial_id, step, benchmark, prompt_id"),
                       ("fairness_items", "trial_id, step, example_id")):
        assert query(uri, f"SELECT {key}, count(*) c FROM {table} GROUP BY ALL HAVING c > 1") == [], table
    steps = query(uri, "SELECT trial_id, list(DISTINCT step ORDER BY step) FROM metrics GROUP BY 1 ORDER BY 1")
    assert len(steps) == 1 + TRIALS
    assert all(s == ([0] if t.endswith("-base") else [0, 2, 4]) for t, s in steps), steps
    (n_safety,) = query(uri, "SELECT count(*) FROM safety_items WHERE benchmark = 'safety'")[0]
    (n_per,) = query(uri, "SELECT count(*) FROM safety_items WHERE benchmark = 'safety' AND trial_id LIKE '%-base'")[0]
    assert n_per > 0 and n_safety == n_per * (1 + 3 * TRIALS)  # base once, each trial at steps 0, 2, 4

    # the CLI answers the same question from the bucket
    assert main(["query", uri, "SELECT count(*) AS n FROM trials WHERE status = 'TERMINATED'", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", str(1 + TRIALS)]

    # 4. report: written locally (--out), naming every trial
    trial_ids = [t for t, in query(uri, "SELECT trial_id FROM trials WHERE method <> 'base'")]
    assert main(["report", uri, "--out", str(tmp_path / "report")]) == 0
    html = (tmp_path / "report" / "report.html").read_text()
    assert all(t in html for t in trial_ids) and len(trial_ids) == TRIALS
    capsys.readouterr()

    # 5. a trial's checkpoint column is a URI that audit can score
    (checkpoint,) = query(uri, f"SELECT checkpoint FROM trials WHERE trial_id = '{trial_ids[0]}'")[0]
    assert checkpoint.startswith(f"s3://{BUCKET}/{PREFIX}/{NAME}/tune/"), checkpoint
    audit_dir = tmp_path / "audit"
    assert main(["audit", "--base", "tiny:llama", "--adapter", checkpoint, "--limit", "1",
                 "--results", str(audit_dir)]) == 0, capsys.readouterr().err
    assert (audit_dir / "store" / "metrics").is_dir()
    assert len(list((audit_dir / "store" / "metrics").glob("*.parquet"))) == 2  # base and the adapter


def test_a_missing_bucket_is_bad_input_before_anything_starts(s3: Any, tmp_path: Path) -> None:
    from alignsweep.errors import InputError
    from alignsweep.spec.preflight import check_results_dir

    check_results_dir(f"s3://{BUCKET}/fresh/{NAME}")  # the bucket is there: fine, and nothing is written
    assert keys(s3, "fresh/") == {}
    with pytest.raises(InputError, match=r"^results path 's3://no-such-bucket/x/s': bucket 'no-such-bucket' does not "
                                         r"exist \(or these credentials cannot see it\)$"):
        check_results_dir("s3://no-such-bucket/x/s")

