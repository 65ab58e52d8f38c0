"""Shared fixtures: a local Ray shut down after each test module that starts it."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ray_local():
    """A 2-CPU local Ray for the tests of one module."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    yield ray
    ray.shutdown()
