"""How an `LLMPool` call is cut into units of work: rows, and which generation slots of them.

`balanced_units` cuts equal small units for members to pull ("balance", "fallback");
`spread_units` gives each member its share of every row's generations ("spread");
`retry_units` cuts, from a unit's answer, what to re-run on another member.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Sequence, Set, Tuple

__all__ = ["PoolStrategy", "Unit", "balanced_units", "retry_units", "spread_units"]

PoolStrategy = Literal["spread", "balance", "fallback"]

# Under "balance", aim for this many units per member: enough that a fast member can take
# more of them and the last ones are short, few enough that the bridge's cost stays negligible.
_UNITS_PER_MEMBER = 16
# ...and never more row-generations per unit than this, so a backend still gets useful batches
# without a slow member sitting on a large share of the job.
_MAX_UNIT_SIZE = 32


@dataclass(eq=False)
class Unit:
    """Some rows and how many generations to make for each, and where they go in the rows.

    Attributes:
        rows: positions of the rows in the job's inputs.
        offsets: for each row, the index of its first generation slot this unit fills.
        num_generations: generations to make for each row.
        member: the member this unit is meant for ("spread"), or None for any ("balance").
        origin: under "spread", the member whose share of the rows this is: the rows keep
            its model's share when it fails, on another member of that model.
        suspect: a single row re-run alone after its member died.
        avoid: the members on which these rows failed for a transient reason: a re-run goes
            to another one.
        done: set once one member has returned it.
        backed_up: set while a second member also runs it.
        started: when its latest run began (`time.monotonic()`).
    """

    rows: List[int]
    offsets: List[int]
    num_generations: int
    member: Optional[int] = None
    origin: Optional[int] = None
    suspect: bool = False
    avoid: Set[int] = field(default_factory=set)
    done: bool = False
    backed_up: bool = False
    started: float = 0.0


def balanced_units(num_rows: int, num_generations: int, members: int) -> List[Unit]:
    """Equal small units, in row order, for members to pull from a shared queue."""
    work = num_rows * num_generations
    size = max(1, min(_MAX_UNIT_SIZE, math.ceil(work / (members * _UNITS_PER_MEMBER))))
    if num_generations <= size:
        per_unit = max(1, size // num_generations)
        chunks = [
            list(range(start, min(start + per_unit, num_rows)))
            for start in range(0, num_rows, per_unit)
        ]
        return [Unit(rows, [0] * len(rows), num_generations) for rows in chunks]
    return [
        Unit([row], [start], min(size, num_generations - start))
        for row in range(num_rows)
        for start in range(0, num_generations, size)
    ]


def spread_units(
    num_rows: int, num_generations: int, members: int, rng: random.Random
) -> List[Unit]:
    """Each member's share of every row: `num_generations // members` generations each, the
    remainder to members taken in turn from a random order, so that every row mixes the models
    and no member gets more than one extra generation per `members` rows than another.

    A row's generations are ordered by member. Each member gets at most two units: the rows
    where it makes the base count, and those where it makes one more.
    """
    base, extra = divmod(num_generations, members)
    order = rng.sample(range(members), members)
    groups: Dict[Tuple[int, int], Unit] = {}
    for row in range(num_rows):
        lucky = {order[(row * extra + k) % members] for k in range(extra)}
        offset = 0
        for member in range(members):
            count = base + (member in lucky)
            if count:
                unit = groups.setdefault((member, count), Unit([], [], count, member))
                unit.rows.append(row)
                unit.offsets.append(offset)
            offset += count
    return list(groups.values())


def retry_units(unit: Unit, rows: Sequence[Sequence[Any]], member: int) -> List[Unit]:
    """The units that re-run the outputs of `unit` marked `transient` in `rows` (its answer
    from `member`), to be sent to a member not yet tried.

    Each row re-runs the span of its slots from its first transient output to its last (an
    API backend fails a request's generations together), and rows with the same span share
    a unit.
    """
    spans: Dict[Tuple[int, int], Unit] = {}
    for row, offset, outputs in zip(unit.rows, unit.offsets, rows):
        failed = [k for k, output in enumerate(outputs) if output.get("transient")]
        if not failed:
            continue
        first, count = failed[0], failed[-1] - failed[0] + 1
        retry = spans.get((first, count))
        if retry is None:
            retry = Unit([], [], count, origin=unit.origin, avoid=unit.avoid | {member})
            spans[(first, count)] = retry
        retry.rows.append(row)
        retry.offsets.append(offset + first)
    return list(spans.values())
