"""Fixtures for the Ray tests: one local Ray instance of 2 CPUs for the session, and a check
that every test gives back what its actors and placement groups reserved."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from waiting import wait_until

CLUSTER_CPUS = 2.0


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="the `ray` extra is not installed")
    # No GPUs, even where there are: the tests must see the same cluster everywhere.
    ray.init(
        num_cpus=int(CLUSTER_CPUS),
        num_gpus=0,
        include_dashboard=False,
        namespace="distilabel-llm-tests",
    )
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def no_actor_left_behind(ray_cluster: Any) -> Iterator[None]:
    yield
    # Ray frees a killed actor's resources asynchronously: wait for them, with a bound.
    assert wait_until(lambda: ray_cluster.available_resources().get("CPU") == CLUSTER_CPUS, 20.0), (
        f"resources still held after the test: {ray_cluster.available_resources()}"
    )
