"""Fixtures for the Ray tests: one local Ray instance of 2 CPUs for the session, and a check
that every test gives back what its actors and placement groups reserved."""

from __future__ import annotations

import warnings
from typing import Any, Iterator

import pytest
from waiting import wait_until

CLUSTER_CPUS = 2.0


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="the `ray` extra is not installed")
    _start(ray)
    yield ray
    ray.shutdown()


def _start(ray: Any) -> None:
    # No GPUs, even where there are: the tests must see the same cluster everywhere.
    ray.init(
        num_cpus=int(CLUSTER_CPUS),
        num_gpus=0,
        include_dashboard=False,
        namespace="distilabel-llm-tests",
    )


@pytest.fixture(autouse=True)
def no_actor_left_behind(ray_cluster: Any) -> Iterator[None]:
    yield
    # Ray frees a killed actor's resources asynchronously: wait for them, with a bound.
    if wait_until(lambda: ray_cluster.available_resources().get("CPU") == CLUSTER_CPUS, 20.0):
        return
    from ray._private.state import actors  # the GCS's actor table; no dashboard needed

    held = ray_cluster.available_resources()
    alive = {key: actor["State"] for key, actor in actors().items() if actor["State"] != "DEAD"}
    assert not alive, f"actors left behind by the test: {alive}; resources held: {held}"
    # Every actor is dead, yet Ray still counts some of their CPUs as held: its own bookkeeping
    # can lose them when an actor is killed while being created (ray-project/ray#27743 and
    # kin). A fresh cluster keeps the tests after this one from being starved.
    ray_cluster.shutdown()
    _start(ray_cluster)
    warnings.warn(f"Ray kept resources of dead actors ({held}); cluster restarted", stacklevel=1)
