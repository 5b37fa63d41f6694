import pytest
from hypothesis import HealthCheck, settings

from tests.strategies import SHARED

settings.register_profile("default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


@pytest.fixture
def shared_workloads():
    """The paper's published workloads in ../shared (skipped when absent)."""
    if not SHARED.is_dir():
        pytest.skip(f"the paper's workloads are not at {SHARED} (../shared is absent)")
    return SHARED
