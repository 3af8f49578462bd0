"""Shared test fixtures. Everything runs offline; tiny models are built at most once per cache."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_cache_dir() -> Path:
    """`$ALIGNSWEEP_CACHE` if set, else `<repo>/.cache/alignsweep` (git-ignored), shared by all runs."""
    return Path(os.environ.get("ALIGNSWEEP_CACHE") or REPO_ROOT / ".cache" / "alignsweep")


test_cache_dir.__test__ = False  # a helper, not a test


class _TinyPaths(Mapping[str, Path]):
    """family → model directory; a family is built (or found in the cache) on first access only."""

    def __init__(self, cache_dir: Path) -> None:
        self._cache_dir = cache_dir
        self._built: dict[str, Path] = {}

    def __getitem__(self, family: str) -> Path:
        from alignsweep.models.tiny import ensure_tiny

        if family not in self._built:
            self._built[family] = ensure_tiny(family, self._cache_dir)
        return self._built[family]

    def __iter__(self) -> Iterator[str]:
        from alignsweep.models.tiny import TINY_FAMILIES

        return iter(TINY_FAMILIES)

    def __len__(self) -> int:
        from alignsweep.models.tiny import TINY_FAMILIES

        return len(TINY_FAMILIES)


@pytest.fixture(scope="session")
def tiny_paths() -> Mapping[str, Path]:
    """Aligned tiny model directories by family (`tiny_paths["llama"]`), built lazily, once."""
    return _TinyPaths(test_cache_dir())


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`<repo>/../shared/data` (real public benchmark files; `$ALIGNSWEEP_SHARED_DATA` elsewhere, e.g. from a
    git worktree); skipped when absent, except in CI.

    `.ci/run` sets ALIGNSWEEP_REQUIRE_SHARED_DATA=1, under which a missing folder fails the test
    instead of skipping it, so CI never passes by silently skipping the real-data tests.
    """
    path = Path(os.environ.get("ALIGNSWEEP_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
    if not path.is_dir():
        if os.environ.get("ALIGNSWEEP_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"shared data required but missing: {path}")
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    """A private local Ray instance (2 CPUs, no dashboard) for one test module, always shut down."""
    import ray

    from alignsweep.engine.runtime import local_init_kwargs

    ray.init(**local_init_kwargs(num_cpus=2), log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
