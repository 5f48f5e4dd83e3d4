"""Fixtures for the Ray tests: one local Ray instance of 2 CPUs for the session, and a check
that every test gives back what its actors and placement groups reserved (a test that does not
fails)."""

from __future__ import annotations

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


def _alive_actors() -> dict:
    from ray._private.state import actors  # the GCS's actor table; no dashboard needed

    return {key: actor["State"] for key, actor in actors().items() if actor["State"] != "DEAD"}


@pytest.fixture(autouse=True)
def no_actor_left_behind(ray_cluster: Any) -> Iterator[None]:
    yield
    # Every actor a test made must reach DEAD in the GCS's table; Ray signals no event when it
    # frees their resources afterwards (asynchronously), so that part is polled, with a bound.
    actors_gone = wait_until(lambda: not _alive_actors(), 20.0)
    freed = actors_gone and wait_until(
        lambda: ray_cluster.available_resources().get("CPU") == CLUSTER_CPUS, 10.0
    )
    if freed:
        return
    alive, held = _alive_actors(), ray_cluster.available_resources()
    # A fresh cluster keeps the tests after this one from failing for it; this one fails.
    ray_cluster.shutdown()
    _start(ray_cluster)
    pytest.fail(
        f"the test left Ray resources held: actors not dead {alive}; available {held} of "
        f"{CLUSTER_CPUS} CPUs",
        pytrace=False,
    )
