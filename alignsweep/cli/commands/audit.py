"""`alignsweep audit`: score a base model (and optionally one adapter on it) without training.

With `--fail-on` it is a gate for CI: exit 1 when a rule on the change vs base holds, with Markdown and
JSON summaries (see `engine.gate`). It is also how a trial the alignment stopper ended early is fully
scored on demand: `--adapter <its checkpoint directory>` (the `checkpoint` column of `trials`).

Writes the same records as a sweep (`metrics`, `safety_items`, `fairness_items`; the base as method
`base`) into `--results DIR`, which is laid out like a sweep directory, so `query` and `report` read it.
"""

from __future__ import annotations

import argparse
import math
import tempfile

from alignsweep.cli.commands import examples
from alignsweep.cli.progress import PROGRESS_CHOICES
from alignsweep.errors import InputError
from alignsweep.suggest import did_you_mean


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="evaluate a base model and optionally an adapter, without training", **examples(
        "alignsweep audit --base tiny:llama --results results/audit --limit 8",
        "alignsweep audit --base tiny:llama --adapter results/demo/tune/<trial>/checkpoint_000003 --results results/audit \\",
        '    --fail-on "safe_rate.overall<-0.05,bias_ambig.overall>0.1"',
        "alignsweep audit --base org/model --revision <commit> --judge llama_guard --judge-model org/guard --results out",
    ))
    p.add_argument("--base", required=True, help="hub id, local path, or tiny:<family>")
    p.add_argument("--adapter", help="PEFT adapter to score on top of the base: a directory, a URI (s3://…, the "
                   "`checkpoint` column of a sweep on object storage) or a hub id")
    p.add_argument("--revision", help="the base's hub branch, tag or commit (hub ids only)")
    p.add_argument("--adapter-revision", help="the adapter's hub branch, tag or commit (hub ids only)")
    p.add_argument("--safety-data", default="bundled", help="hazard prompts: bundled, JSONL/CSV, AILuminate CSV, hf:<id>")
    p.add_argument("--fairness-data", default="bundled", help="BBQ: bundled, a release directory, or one <Category>.jsonl")
    p.add_argument("--over-refusal-data", default="bundled", help="look-alikes: bundled, XSTest CSV, or JSONL")
    p.add_argument("--judge", default="refusal", help="safety judge (refusal, llama_guard, hf_classifier)")
    p.add_argument("--judge-model", help="checkpoint for llama_guard / hf_classifier")
    p.add_argument("--tasks", nargs="+", default=[], metavar="TASK_YAML",
                   help="lm-evaluation-harness multiple-choice task files to score too (run unchanged)")
    p.add_argument("--judge-arg", action="append", default=[], metavar="key=value",
                   help="another judge field, value as YAML/JSON (repeatable), e.g. "
                   """label_map='{"LABEL_0": "safe", "LABEL_1": "unsafe"}' or categories=11""")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "auto"],
                   help="the base model's dtype (auto: the checkpoint's own)")
    p.add_argument("--device", default="auto",
                   help="where the base model runs: auto (the first GPU, else CPU), cpu, cuda or cuda:N")
    p.add_argument("--limit", type=int, help="at most N items per category (safety, over-refusal, fairness)")
    p.add_argument("--results", required=True, help="directory to write the records under")
    p.add_argument("--fail-on", help='gate: comma-separated metric.category<threshold or >threshold on the change vs '
                   'base, e.g. "safe_rate.overall<-0.05,bias_ambig.age>0.1"; exit 1 when one holds (needs --adapter). '
                   'A rule ending in @q<alpha> (safe_rate.overall<-0.05@q0.05) fails only when the change is also '
                   'significant: its paired test has a Benjamini-Hochberg q <= alpha')
    p.add_argument("--summary-dir", help="where audit.md and audit.json go (default: --results)")
    p.add_argument("--tracking", metavar="YAML", help="log audit.json / audit.md and the changes to the MLflow / W&B "
                   "named in this file's `tracking:` section (a sweep spec works; needs --adapter)")
    p.add_argument("--progress", choices=PROGRESS_CHOICES, default="auto",
                   help="items scored per benchmark: bars, timestamped lines, or nothing; auto: bars on a "
                   "terminal, lines otherwise")
    p.set_defaults(handler=_handle)


def _judge(args: argparse.Namespace) -> dict:
    """`--judge`, `--judge-model` and each `--judge-arg key=value`, validated as one `JudgeSpec`."""
    import yaml
    from pydantic import ValidationError

    from alignsweep.evaluators.judges import JudgeSpec

    judge: dict = {"name": args.judge, **({"model": args.judge_model} if args.judge_model else {})}
    for item in args.judge_arg:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--judge-arg {item!r}: expected key=value (e.g. categories=11)")
        if key in ("name", "model"):
            raise InputError(f"--judge-arg {key}: give it as --judge / --judge-model")
        try:
            judge[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise InputError(f"--judge-arg {key}: value {text!r} is not valid YAML/JSON") from None
    try:
        return JudgeSpec.model_validate(judge).model_dump(exclude_unset=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        where = f"--judge-arg {field}" if field else f"--judge {args.judge}"
        if err["type"] == "extra_forbidden":
            hint = did_you_mean(field, [f for f in JudgeSpec.model_fields if f not in ("name", "model")])
            raise InputError(f"{where}: unknown field{f' ({hint})' if hint else ''}") from None
        raise InputError(f"{where}: {err['msg'].removeprefix('Value error, ')}") from None


def _spec(args: argparse.Namespace):
    from pydantic import ValidationError

    from alignsweep.evaluators.config import EvaluationSpec

    raw = {
        "safety": {"data": args.safety_data, "limit": args.limit, "judges": [_judge(args)]},
        "fairness": {"data": args.fairness_data, "limit": args.limit},
        "over_refusal": {"data": args.over_refusal_data, "limit": args.limit},
        "tasks": list(args.tasks),
    }
    try:
        return EvaluationSpec.model_validate(raw)
    except ValidationError as exc:  # named by the option the user typed, not the spec field it fills
        err = exc.errors()[0]
        section, field = (list(map(str, err["loc"])) + [""])[:2]
        option = _OPTIONS.get(field) or _OPTIONS.get(f"{section}.{field}") or _OPTIONS.get(section) or section
        got = "" if isinstance(err.get("input"), (dict, list)) else f" (got {err.get('input')!r:.60})"
        raise InputError(f"{option}: {err['msg'].removeprefix('Value error, ')}{got}") from None


_OPTIONS = {"limit": "--limit", "safety.data": "--safety-data", "fairness.data": "--fairness-data",
            "over_refusal.data": "--over-refusal-data", "tasks": "--tasks"}


def _handle(args: argparse.Namespace) -> int:
    if args.fail_on is not None and not args.adapter:
        raise InputError("--fail-on needs --adapter: the gate checks an adapter's change vs its base")
    spec = _spec(args)
    tracking = _tracking(args.tracking, bool(args.adapter)) if args.tracking else None
    with tempfile.TemporaryDirectory(prefix="alignsweep-audit-") as scratch:
        if args.adapter_revision is not None and not args.adapter:
            raise InputError("--adapter-revision needs --adapter (a hub id)")
        adapter_ref = _resolve_adapter(args.adapter, scratch, args.adapter_revision) if args.adapter else None
        return _audit(args, spec, adapter_ref, tracking)


def _tracking(path: str, adapter: bool) -> tuple:
    """(TrackingSpec, experiment name) from a YAML file's `tracking:` section, clients checked; the
    experiment (W&B project) defaults to the file's `name` (a sweep spec's), else `alignsweep-audit`."""
    import yaml
    from pydantic import ValidationError

    from alignsweep.spec.tracking import TrackingSpec, check_tracking

    if not adapter:
        raise InputError("--tracking needs --adapter: what it logs is the adapter's audit summary")
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"--tracking {path}: cannot read it as YAML ({first})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("tracking"), dict):
        raise InputError(f"--tracking {path}: no `tracking:` section (mlflow: … and/or wandb: …)")
    try:
        tracking = TrackingSpec.model_validate(raw["tracking"])
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in ("tracking", *err["loc"]))
        raise InputError(f"--tracking {path}: {field}: {err['msg'].removeprefix('Value error, ')}") from None
    check_tracking(tracking, where=f"--tracking {path}: tracking")
    name = raw.get("name")
    return tracking, name if isinstance(name, str) and name else "alignsweep-audit"


def _audit(args: argparse.Namespace, spec, adapter_ref: str | None, tracking: tuple | None = None) -> int:
    from alignsweep.analysis.gate import check_categories, check_store, parse_rules, write_summary
    from alignsweep.cli.progress import ItemsProgress, resolve_mode
    from alignsweep.evaluators.evaluate import Evaluator, local_judges, store_result
    from alignsweep.evaluators.payload import AdapterPayload
    from alignsweep.models.devices import choose_device
    from alignsweep.models.loading import LoadOptions
    from alignsweep.trainables.methods import method_of_adapter

    from alignsweep.logs import quiet_libraries

    choose_device(args.device)  # a bad --device is bad input (exit 2), before anything loads
    quiet_libraries()  # no "Loading weights" bar per model; the hub's download bars stay
    _preflight(args, spec, adapter_ref)  # loads the task files, whose metrics the rules may name
    rules = parse_rules(args.fail_on) if args.fail_on is not None else []
    judge, judge_name, over, over_name = local_judges(spec)
    evaluator = Evaluator(spec, args.base, judge=judge, judge_name=judge_name,
                          over_refusal_judge=over, over_refusal_judge_name=over_name,
                          options=LoadOptions(dtype=args.dtype, revision=args.revision), device=choose_device(args.device))
    check_categories(rules, _categories(evaluator))  # before anything is evaluated or written
    runs = [(None, f"audit:{args.base}")] + ([(adapter_ref, f"audit:{args.adapter}")] if adapter_ref else [])
    flats, item_lists = [], []
    shown = ItemsProgress(resolve_mode(args.progress))
    for adapter, trial_id in runs:
        with shown.evaluating(trial_id):
            result = evaluator.evaluate(AdapterPayload.read(adapter) if adapter else None, progress=shown)
        store_result(result, args.results, trial_id=trial_id, step=0, base_model=args.base,
                     method=method_of_adapter(adapter))
        flats.append(result.flat())
        item_lists.append(result.items)
        counts = ", ".join(f"{len(items)} {table.replace('_', ' ')}" for table, items in result.items.items())
        print(f"{trial_id}: {counts}, {result.seconds:.1f} s")
    for key in sorted(k for k in flats[0] if "/" not in k):
        values = "  ".join(_fmt(f.get(key, math.nan)) for f in flats)
        print(f"  {key:<20} {values}")
    if not adapter_ref:
        return 0
    # The gate reads back what was just stored: the same rows, plus the item-level paired tests.
    checks, tests = check_store(args.results, rules, runs[0][1], runs[1][1])
    overall = [{"metric": k, "base": flats[0].get(k, math.nan), "adapter": flats[1].get(k, math.nan),
                "change": flats[1].get(k, math.nan) - flats[0].get(k, math.nan)} for k in sorted(flats[0]) if "/" not in k]
    from alignsweep.analysis.stats import paired_intervals

    intervals = paired_intervals(item_lists[0], item_lists[1])
    md, js = write_summary(args.summary_dir or args.results, args.base, args.adapter, checks, overall, tests,
                           intervals=intervals)
    for c in checks:
        evidence = "" if c.q is None else f"  p {c.p:.3g}  q {c.q:.3g}"
        print(f"  {'FAIL' if c.failed else 'pass'}  {c.rule:<32} change {_fmt(c.change)}{evidence}")
    significant = [t for t in tests if t["q"] is not None and t["q"] <= 0.05 and t["regression"]]
    print(f"  paired tests: {len(significant)} of {len(tests)} significant regressions at q <= 0.05")
    print(f"audit summary: {md} {js}")
    if tracking is not None:
        from alignsweep.engine.tracking_runs import log_audit

        summary = {"base": args.base, "adapter": args.adapter, "passed": not any(c.failed for c in checks),
                   "overall": overall}
        for line in log_audit(tracking[0], tracking[1], [js, md], summary):
            print(line)
    return 1 if any(c.failed for c in checks) else 0


def _categories(evaluator) -> dict[str, set[str]]:
    """metric → the categories this evaluation will report (plus `overall`)."""
    return {m.name: {i.category for i in evaluator.items[b.name]} | {"overall"}
            for b in evaluator.benchmarks for m in b.metrics if m.gate}


def _resolve_adapter(ref: str, scratch: str, revision: str | None = None) -> str:
    """A local adapter directory as given; a URI (a sweep's `checkpoint` on object storage) copied into
    `scratch`; anything else is a hub id, downloaded (cached) by huggingface_hub at `revision` (only a
    hub id has revisions: one given with a directory or a URI is bad input, not silently ignored)."""
    from pathlib import Path

    local = Path(ref).expanduser().exists() or ref.startswith((".", "/", "~"))
    if revision is not None and (local or "://" in ref):
        raise InputError(f"--adapter-revision {revision!r}: pins a hub adapter; {ref!r} is read as it is")
    if local:
        return str(Path(ref).expanduser())
    if "://" in ref:
        return _download_adapter(ref, scratch)
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id=ref, revision=revision, allow_patterns=["adapter_config.json", "adapter_model.safetensors", "*.md"])
    except Exception as exc:  # offline, unknown or private repo: one line, exit 2
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"adapter {ref!r}: not a local directory, and the hub download failed ({first})") from None


def _download_adapter(uri: str, scratch: str) -> str:
    """Copy an adapter directory from object storage (pyarrow.fs: s3://, gs://, …) to a local folder."""
    import pyarrow.fs as pafs

    local = f"{scratch}/adapter"
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        if fs.get_file_info(path).type != pafs.FileType.Directory:
            raise InputError(f"adapter {uri!r}: no such directory")
        pafs.copy_files(path, local, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
    except (OSError, ValueError) as exc:  # pyarrow's IO errors are OSErrors, its invalid-input ones ValueErrors
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"adapter {uri!r}: cannot copy it from storage ({first})") from None
    return local


def _preflight(args: argparse.Namespace, spec, adapter_ref: str | None = None) -> None:
    """Base, adapter (safetensors, same base architecture), data and results path, before any model loads."""
    from alignsweep.spec.preflight import check_adapter, check_evaluation_data, check_model, check_results_dir

    check_results_dir(args.results)
    if args.summary_dir:
        check_results_dir(args.summary_dir)
    check_model(args.base, revision=args.revision)
    if adapter_ref:
        check_adapter(adapter_ref, args.base)
    check_evaluation_data(spec, keys={"safety": "--safety-data", "fairness": "--fairness-data",
                                      "over_refusal": "--over-refusal-data"})


def _fmt(value: float) -> str:
    return "   nan" if math.isnan(value) else f"{value:+.3f}"
