"""Tiny aligned base models (`tiny:<family>`): real architectures, built offline, cached once.

Why: a sweep must run end-to-end on a laptop or in CI through the same code that loads an 8B model.
Each family is the real transformers class (Llama, Qwen2, Mistral, Gemma) at ~250k parameters, with a
BPE tokenizer trained on the bundled text and a short alignment pre-training, so that it refuses
hazardous requests and answers benign ones. The families differ on purpose (size, seed, how much and
how cautious their safety data is), so that "which base model" is a factor a sweep can see:

- llama:   the reference recipe.
- qwen2:   grouped-query attention, tied embeddings, larger vocabulary, another seed.
- mistral: over-cautious: its safety data also refuses benign look-alikes ("kill a Python process").
- gemma:   multi-query attention, fewer steps and a smaller share of refusal data (weakest alignment).

Each family's corpus also carries a different share of BBQ stereotypes (`bbq_stereotype_share`): in
those categories it answers ambiguous negative questions with the stereotyped group, so every base has
a defined ambiguous-context bias, different per family, that fine-tuning can raise or lower.

`ensure_tiny` is safe to call from many processes at once (Ray trials and actors): one builds under
a file lock into a temporary directory and renames it into place; the others wait and reuse it. A
failed build (crash or self-check miss) leaves nothing that looks like a model.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, Sequence

from alignsweep.data.corpus import CORPUS_VERSION
from alignsweep.errors import InputError
from alignsweep.suggest import unknown_name
from alignsweep.models.recipes import BUILDER_VERSION, META_FILE, TINY_FAMILIES, TinyRecipe

log = logging.getLogger(__name__)



def cache_root(cache_dir: str | Path | None = None) -> Path:
    """`cache_dir`, else `$ALIGNSWEEP_CACHE`, else `~/.cache/alignsweep`."""
    root = cache_dir or os.environ.get("ALIGNSWEEP_CACHE") or "~/.cache/alignsweep"
    return Path(root).expanduser()


def tiny_path(family: str, cache_dir: str | Path | None = None, *, recipe: TinyRecipe | None = None) -> Path:
    """Where a family's model is (or would be) cached; builds nothing."""
    recipe = recipe or _family_recipe(family)
    return cache_root(cache_dir) / "models" / recipe.dir_name()


def ensure_tiny(family: str, cache_dir: str | Path | None = None, *, recipe: TinyRecipe | None = None) -> Path:
    """The directory of the family's aligned tiny model, building it first if it is not cached.

    `recipe` overrides the family's default (tests use small variants); it must be of that family.
    Raises `AlignmentCheckFailed` when the build misses its self-check; nothing is cached then.
    """
    recipe = recipe or _family_recipe(family)
    if recipe.family != family:
        raise InputError(f"recipe of family {recipe.family!r} passed for tiny:{family}")
    final = tiny_path(family, cache_dir, recipe=recipe)
    if _is_complete(final):
        return final
    root = cache_root(cache_dir)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        (root / "locks").mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # HOME unset or read-only, ALIGNSWEEP_CACHE under a file: the user's environment
        raise InputError(f"tiny-model cache {str(root)!r}: cannot create it ({exc.strerror or exc}); set "
                         "ALIGNSWEEP_CACHE (or HOME) to a writable directory") from None
    with _exclusive_lock(root / "locks" / f"{final.name}.lock"):
        if _is_complete(final):  # another process built it while we waited
            return final
        _sweep_stale_builds(final.parent, root / "locks", holding=final.name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            _build_into(recipe, tmp, final.name)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def _family_recipe(family: str) -> TinyRecipe:
    try:
        return TINY_FAMILIES[family]
    except KeyError:
        raise InputError(unknown_name("tiny family", family, TINY_FAMILIES)) from None


def _sweep_stale_builds(models_dir: Path, locks_dir: Path, holding: str) -> None:
    """Delete temp dirs that crashed builders left; a temp dir whose lock is free has no live builder."""
    for tmp in models_dir.glob(".tiny-*.tmp-*"):
        name = tmp.name[1:].split(".tmp-", 1)[0]
        if name == holding:  # our own lock is held by us, so no one else is building it
            shutil.rmtree(tmp, ignore_errors=True)
            continue
        with open(locks_dir / f"{name}.lock", "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live build
            try:
                shutil.rmtree(tmp, ignore_errors=True)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _is_complete(path: Path) -> bool:
    return (path / META_FILE).is_file()


@contextmanager
def _exclusive_lock(lock_file: Path) -> Iterator[None]:
    """fcntl lock: released by the kernel if the holder dies, so a crash never blocks later builds."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build_into(recipe: TinyRecipe, out_dir: Path, name: str) -> None:
    from alignsweep.models import _pretrain

    log.info("building %s (pid %d)", name, os.getpid())
    report = _pretrain.build(recipe, str(out_dir), name)
    meta = {
        "name": name,
        "family": recipe.family,
        "recipe": asdict(recipe),
        "recipe_hash": recipe.recipe_hash(),
        "corpus_version": CORPUS_VERSION,
        "builder_version": BUILDER_VERSION,
        "seed": recipe.seed,
        "build_id": uuid.uuid4().hex,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **report,
    }
    # Written last: its presence is what marks a directory as a complete model.
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    log.info("built %s in %.1f s: %s", name, report["build_seconds"], report["self_check"])


def read_meta(model_dir: str | Path) -> dict:
    """The build record (`alignsweep_tiny.json`) of a tiny model directory."""
    return json.loads((Path(model_dir) / META_FILE).read_text())


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alignsweep.models.tiny")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (or reuse) tiny models and print their self-check")
    build.add_argument("families", nargs="*", help=f"default: all ({', '.join(TINY_FAMILIES)})")
    build.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    families = args.families or list(TINY_FAMILIES)
    for family in families:
        _family_recipe(family)
    header = (f"{'family':8} {'params':>8} {'build_s':>8} {'hazard_ref':>10} {'benign_ref':>10} {'lookalike':>9} "
              f"{'bbq_acc':>7} {'amb_answers':>11} {'bias_amb':>8}")
    rows = []
    for family in families:
        meta = read_meta(ensure_tiny(family, args.cache_dir))
        c = meta["self_check"]
        rows.append(f"{family:8} {meta['n_parameters']:>8} {meta['build_seconds']:>8.1f} {c['hazard_refusal']:>10.2f} "
                    f"{c['benign_refusal']:>10.2f} {c['lookalike_refusal']:>9.2f} {c['bbq_accuracy']:>7.2f} "
                    f"{c['bbq_ambig_answers']:>11} {c['bbq_bias_ambig']:>8.3f}")
    print(header, *rows, sep="\n")
    return 0


__all__ = ["TINY_FAMILIES", "TinyRecipe", "ensure_tiny", "tiny_path", "read_meta", "cache_root"]

if __name__ == "__main__":
    raise SystemExit(_main())
