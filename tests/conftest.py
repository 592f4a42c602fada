"""Shared test setup: hypothesis profiles and an isolated, offline environment for every test.

Hypothesis profiles (pick one with ``VRAMPLAN_HYPOTHESIS_PROFILE``):

* ``ci`` (default): modest example counts so the whole suite stays fast.
* ``nightly``: at least 10,000 examples per property test, no deadline. Run it with
  ``VRAMPLAN_HYPOTHESIS_PROFILE=nightly pytest tests/hardening``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=False,
    print_blob=True,
)
settings.register_profile(
    "nightly",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("VRAMPLAN_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _isolated_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Offline Hub, and HOME / XDG / HF caches under a temporary folder so no test touches the real home.

    Uses ``tmp_path_factory`` (not ``tmp_path``) so tests that list their own ``tmp_path`` see only
    the files they create.
    """
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
    ):
        path = home / sub
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(path))
    monkeypatch.setenv("HF_HOME", str(home / ".cache" / "huggingface"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return home
