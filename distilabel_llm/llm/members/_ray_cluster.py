"""What `RayLLM` and `LLMPool.from_ray` ask of the cluster: a connection, room for their
actors, and a placement group when the replicas' resources must be reserved together."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Literal, Mapping, Optional, Tuple

from distilabel_llm.errors import ClusterTooSmallError, MissingExtraError

if TYPE_CHECKING:
    from distilabel_llm.llm.core.contract import LoadLLMFn
    from distilabel_llm.tasks.base import Task

PlacementStrategy = Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"]
# CPUs an actor reserves unless told otherwise.
DEFAULT_NUM_CPUS = 1
_PLACEMENT_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


def import_ray(address: Optional[str] = None) -> Any:
    """Imports `ray` and connects to a cluster: `address`, else `RAY_ADDRESS`, else a new local
    one. A program that already called `ray.init` keeps its connection."""
    try:
        import ray
    except ImportError as error:
        raise MissingExtraError("ray", "ray") from error
    if not ray.is_initialized():
        ray.init(address=address)
    return ray


def actor_demand(
    num_cpus: float, num_gpus: float, resources: Optional[Mapping[str, float]]
) -> Dict[str, float]:
    """The resources one actor reserves, in Ray's names, zeros left out."""
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus), *(resources or {}).items()):
        if value < 0:
            raise ValueError(f"`{name}` must be 0 or more, not {value!r}.")
    demand = {"CPU": float(num_cpus), "GPU": float(num_gpus), **(resources or {})}
    return {name: float(value) for name, value in demand.items() if value}


def check_cluster_fits(
    ray: Any, demand: Mapping[str, float], count: int, strategy: Optional[str] = None
) -> None:
    """Raises if the cluster's nodes, empty, could not hold `count` actors of `demand`.

    Ray would otherwise wait forever for a node that never comes. Resources that other work
    holds for now are not counted against: Ray rightly waits for those.
    """
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    per_node = [
        min((int(have.get(name, 0) // need) for name, need in demand.items()), default=count)
        for have in nodes
    ]
    if strategy == "STRICT_PACK":
        fits = max(per_node, default=0)
    elif strategy == "STRICT_SPREAD":
        fits = sum(1 for n in per_node if n > 0)
    else:
        fits = sum(per_node)
    if fits >= count:
        return
    totals: Dict[str, float] = {}
    for have in nodes:
        for name in demand:
            totals[name] = totals.get(name, 0) + have.get(name, 0)
    placement = f" with placement strategy {strategy}" if strategy else ""
    raise ClusterTooSmallError(
        f"The Ray cluster cannot hold {count} actor(s) asking for {dict(demand)} each"
        f"{placement}: its {len(nodes)} node(s) have {totals} in all, and hold {fits}. Ask for "
        "fewer replicas or resources, or add nodes; on an autoscaling cluster pass "
        "`check_resources=False`."
    )


def ray_members(
    make_member: Callable[..., Any],
    task: Task,
    load_llm_fn: LoadLLMFn,
    replicas: int,
    placement_strategy: Optional[PlacementStrategy],
    ray_kwargs: Dict[str, Any],
) -> Tuple[List[Any], Optional[Callable[[], None]]]:
    """`replicas` members made by `make_member` (`RayLLM`), and what releases their placement
    group (None without one).

    The cluster is checked for room for all of them at once, not one by one: a pool whose last
    replicas can never be placed would wait for them forever.
    """
    if placement_strategy is not None and placement_strategy not in _PLACEMENT_STRATEGIES:
        raise ValueError(
            f"`placement_strategy` must be one of {_PLACEMENT_STRATEGIES} or None, not "
            f"{placement_strategy!r}."
        )
    if placement_strategy is not None and "scheduling_strategy" in ray_kwargs:
        raise ValueError("Pass `placement_strategy` or `scheduling_strategy`, not both.")
    demand = actor_demand(
        ray_kwargs.get("num_cpus", DEFAULT_NUM_CPUS),
        ray_kwargs.get("num_gpus", 0),
        ray_kwargs.get("resources"),
    )
    ray = import_ray(ray_kwargs.get("address"))
    if ray_kwargs.pop("check_resources", True) and "scheduling_strategy" not in ray_kwargs:
        check_cluster_fits(ray, demand, replicas, placement_strategy)
    release: Optional[Callable[[], None]] = None
    strategies: List[Any] = [ray_kwargs.pop("scheduling_strategy", None)] * replicas
    if placement_strategy is not None:
        if not demand:
            raise ValueError(
                "A placement group reserves resources, but each replica asks for none: set "
                "`num_cpus`, `num_gpus` or `resources`."
            )
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        group = placement_group([demand] * replicas, strategy=placement_strategy)
        ray.get(group.ready())
        strategies = [
            PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index)
            for index in range(replicas)
        ]

        def release() -> None:
            remove_placement_group(group)

    members: List[Any] = []
    try:
        for strategy in strategies:
            members.append(
                make_member(
                    task,
                    load_llm_fn,
                    scheduling_strategy=strategy,
                    check_resources=False,
                    **ray_kwargs,
                )
            )
    except BaseException:
        for member in members:
            member.teardown(wait=False)
        if release is not None:
            release()
        raise
    return members, release
