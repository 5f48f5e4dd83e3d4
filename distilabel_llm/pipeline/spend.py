"""A job's spending: what each batch costs, and the budget it is held to.

Before a batch is sent, its worst case (`BaseLLM.max_cost`) is reserved from the budget; when
it returns, the reservation is settled with what its outputs cost. A batch the budget cannot
cover is not sent. Counting a request only once it returned is what let budgets overshoot:
requests in flight together were each sent while the budget still looked unspent.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional

from distilabel_llm.errors import BudgetError
from distilabel_llm.llm.core.cost import Budget, format_usd
from distilabel_llm.llm.core.outputs import LLMOutput, output_cost
from distilabel_llm.pipeline.stats import JobStats

if TYPE_CHECKING:
    from distilabel_llm.llm.core.contract import BaseLLM, Outputs

__all__ = ["JobSpend", "Reservation", "check_budget"]

RowResult = Any  # a row's outputs, or the exception it failed with


@dataclass
class Reservation:
    """What one batch holds of the budget until it is settled."""

    amount: float
    settled: bool = False


def check_budget(
    max_budget: Optional[float], models: Dict[str, Optional[BaseLLM]], settings: Dict[str, Any]
) -> Optional[Budget]:
    """The job's budget, once every model can bound what a call costs; None without one.

    Args:
        max_budget: the most USD the job may spend, or None.
        models: the job's models by role ("generator", "labeller"); None where absent.
        settings: each role's generation settings for the job.

    Raises:
        BudgetError: (a `ValueError`) for a model whose cost cannot be bounded, naming the fix;
            `ValueError` for a budget that is not a positive number.
    """
    if max_budget is None:
        return None
    budget = Budget(max_budget)
    for role, llm in models.items():
        problem = llm.cost_bound_problem(settings[role]) if llm is not None else None
        if problem is not None:
            raise BudgetError(
                f"A job with `max_budget` needs the cost of every call bounded; "
                f"the {role}'s is not. {problem}"
            )
    return budget


class JobSpend:
    """Counts what a job spends, by model, and holds it to its budget, if any.

    Args:
        budget: the job's budget; None counts the spend without limiting it.
        stats: where the cost by model goes.
    """

    def __init__(self, budget: Optional[Budget], stats: JobStats) -> None:
        self.budget = budget
        self.stats = stats
        self.show: Optional[Callable[[str], None]] = None
        """Shows the spend as it grows (a progress bar's `spend`), once something has a cost."""
        self._spent = 0.0
        self._lock = threading.Lock()

    @property
    def spent(self) -> float:
        """USD spent by the batches settled so far (with a budget: the budget's, which counts
        a dry run too)."""
        return self.budget.spent if self.budget is not None else self._spent

    def reserve(
        self, llm: BaseLLM, rows: List[Dict[str, Any]], num_generations: int, settings: Any
    ) -> Optional[Reservation]:
        """Reserves the worst case of sending `rows` to `llm`; None when the budget cannot
        cover it now. Without a budget, every batch gets an empty reservation."""
        if self.budget is None or not rows:
            return Reservation(0.0)
        worst = llm.max_cost(rows, num_generations, settings)
        if worst is None:  # checked before the job; a model may still change its mind
            raise BudgetError(f"The budget cannot be kept: {llm.cost_bound_problem(settings)}")
        return Reservation(worst) if self.budget.reserve(worst) else None

    def settle_when_done(self, future: Future[Outputs], reservation: Reservation) -> None:
        """Settles `reservation` as soon as `future` brings its outputs, from whichever thread
        that is; a failed batch is settled by the job, once it retried its rows."""

        def settle(done: Future[Outputs]) -> None:
            if not done.cancelled() and done.exception() is None:
                self.settle(reservation, done.result())

        future.add_done_callback(settle)

    def settle(self, reservation: Reservation, rows: Iterable[RowResult]) -> None:
        """Settles `reservation` with the cost of `rows` (each a row's outputs, or the
        exception a row failed with, which sent nothing that was billed). Only once."""
        outputs = [output for row in rows if isinstance(row, list) for output in row]
        costs = [output_cost(output) for output in outputs]
        known = float(sum(cost for cost in costs if cost is not None))
        # An output with text whose cost is unknown (a backend that reported no token counts)
        # may have cost up to the worst case: the budget keeps the whole reservation then.
        unknown = any(
            cost is None and output["raw_output"] is not None
            for cost, output in zip(costs, outputs)
        )
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            self._spent += known
            if self.budget is not None:
                self.budget.settle(reservation.amount, reservation.amount if unknown else known)
            self._count(outputs)

    def _count(self, outputs: List[LLMOutput]) -> None:
        for output in outputs:
            cost = output_cost(output)
            if cost is not None:
                self.stats.count_cost(output["model_name"], cost)
        if self.show is not None and self.stats.cost_by_model:
            limit = f" of {format_usd(self.budget.limit)}" if self.budget is not None else ""
            self.show(f"{format_usd(self.spent)}{limit}")
