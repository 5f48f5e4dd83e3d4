"""`LLMPool` over Ray actors: `from_ray`, both strategies, failover, placement groups, and
`Pipeline` taking it unchanged."""

from __future__ import annotations

import logging
import threading
from collections import Counter

import pytest
from waiting import wait_until

from distilabel_llm.errors import RayLLMError
from distilabel_llm.llm import LLMPool, ProcessLLM, RayLLM
from distilabel_llm.pipeline import Pipeline
from distilabel_llm.testing import FakeLLM

pytestmark = [pytest.mark.ray, pytest.mark.timeout(90)]

INPUTS = [{"input": f"q{i}"} for i in range(12)]


def _fake_loader(name: str, **kwargs):
    return lambda task: FakeLLM(task, model_name=name, **kwargs)


def _texts(rows):
    return [[output["raw_output"] for output in row] for row in rows]


@pytest.mark.parametrize("strategy", ["spread", "balance"])
@pytest.mark.parametrize("num_generations", [1, 3])
def test_from_ray_returns_every_row_in_order(task, strategy: str, num_generations: int) -> None:
    with LLMPool.from_ray(
        task, _fake_loader("r"), replicas=2, strategy=strategy, num_cpus=0.5
    ) as pool:
        assert all(isinstance(member, RayLLM) for member in pool.llms)
        rows = pool.generate(INPUTS, num_generations=num_generations)
    assert len(rows) == len(INPUTS)
    for position, row in enumerate(rows):
        assert len(row) == num_generations
        assert all(text.endswith(f": q{position}") for text in _texts([row])[0])


def test_balance_shares_the_work_and_reports_each_member(task) -> None:
    by_member: Counter = Counter()
    total = []
    with LLMPool.from_ray(task, _fake_loader("r", latency=0.02), replicas=2, num_cpus=0.5) as pool:
        for member in pool.llms:
            member.wait_loaded()
        assert [name.split(" (")[0] for name in pool.member_names] == ["#0 r", "#1 r"]
        assert all("(node " in name for name in pool.member_names)
        pool.generate(
            INPUTS * 4,
            num_generations=2,
            progress_callback_func=lambda advance=1: total.append(advance),
            member_progress_callback_func=lambda member, advance: by_member.update(
                {member: advance}
            ),
        )
    assert sum(total) == sum(by_member.values()) == len(INPUTS) * 4 * 2
    assert set(by_member) == {0, 1}


def test_a_pool_mixes_ray_and_process_members(task) -> None:
    members = [
        RayLLM(task, _fake_loader("ray"), num_cpus=0.5),
        ProcessLLM(task, _fake_loader("process")),
    ]
    with LLMPool(members, strategy="spread", seed=0) as pool:
        rows = pool.generate(INPUTS, num_generations=2)
    assert {output["model_name"] for row in rows for output in row} == {"ray", "process"}


def test_a_member_killed_mid_job_has_its_work_rerun(task, ray_cluster, caplog) -> None:
    pool = LLMPool(
        [
            RayLLM(task, _fake_loader("doomed", latency=0.1), num_cpus=0.5),
            RayLLM(task, _fake_loader("survivor", latency=0.01), num_cpus=0.5),
        ],
        strategy="balance",
    )
    doomed = pool.llms[0]
    result = {}
    job = threading.Thread(target=lambda: result.update(rows=pool.generate(INPUTS * 4)))
    with pool, caplog.at_level(logging.WARNING, logger="distilabel_llm"):
        job.start()
        assert wait_until(lambda: doomed.in_flight > 0)
        ray_cluster.kill(doomed.actor)
        job.join(60)
    assert not job.is_alive()
    rows = result["rows"]
    assert len(rows) == len(INPUTS) * 4 and all(len(row) == 1 for row in rows)
    assert isinstance(doomed.failure, RayLLMError)
    assert "member #0 failed for good" in caplog.text


def test_a_placement_group_is_reserved_and_released(task, ray_cluster) -> None:
    from ray.util import placement_group_table

    def states():
        return Counter(group["state"] for group in placement_group_table().values())

    before = states()["CREATED"]
    pool = LLMPool.from_ray(
        task, _fake_loader("r"), replicas=2, num_cpus=0.5, placement_strategy="STRICT_PACK"
    )
    with pool:
        assert states()["CREATED"] == before + 1
        assert len(pool.generate(INPUTS)) == len(INPUTS)
    assert states()["CREATED"] == before


def test_from_ray_refuses_what_the_cluster_cannot_hold(task) -> None:
    with pytest.raises(ValueError, match=r"cannot hold 5 actor\(s\) .* and hold 4"):
        LLMPool.from_ray(task, _fake_loader("r"), replicas=5, num_cpus=0.5)
    with pytest.raises(ValueError, match="STRICT_SPREAD"):
        LLMPool.from_ray(
            task, _fake_loader("r"), replicas=2, num_cpus=0.5, placement_strategy="STRICT_SPREAD"
        )
    with pytest.raises(ValueError, match="`placement_strategy` must be one of"):
        LLMPool.from_ray(task, _fake_loader("r"), replicas=2, placement_strategy="NEARBY")
    with pytest.raises(ValueError, match="2 or more `replicas`, not 1; for one, use `RayLLM`"):
        LLMPool.from_ray(task, _fake_loader("r"), replicas=1)


def test_pipeline_takes_a_ray_pool_unchanged(task) -> None:
    with LLMPool.from_ray(task, _fake_loader("r"), replicas=2, num_cpus=0.5) as pool:
        rows = Pipeline(generator=pool).generate(
            INPUTS, num_generations=2, batch_size=4, display_progress_bar=False
        )
    assert [len(row["generations"]) for row in rows] == [2] * len(INPUTS)
    for position, row in enumerate(rows):
        assert all(text.endswith(f": q{position}") for text in row["generations"])
        assert row["error"] is None
