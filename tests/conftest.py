import pytest
from hypothesis import HealthCheck, settings

from tests.strategies import SHARED

import os

settings.register_profile("default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# CI: the same examples on every run (a failure there is reproducible, never a lucky draw); the
# profile inherits the default's sizes.
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "default")


@pytest.fixture
def shared_workloads():
    """The paper's published workloads in ../shared (skipped when absent)."""
    if not SHARED.is_dir():
        pytest.skip(f"the paper's workloads are not at {SHARED} (../shared is absent)")
    return SHARED
