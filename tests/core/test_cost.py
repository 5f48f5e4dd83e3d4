"""Prices, budgets and the worst case of a call: what an LLM costs, and bounds on it."""

from __future__ import annotations

import random
import threading
from typing import Callable, List

import pytest

from distilabel_llm import TextGenerationTask
from distilabel_llm.llm import LLMPool
from distilabel_llm.llm.core.cost import Budget, Prices, max_call_cost, prompt_tokens_bound
from distilabel_llm.testing import FakeLLM

pytestmark = pytest.mark.timeout(30)

PRICED = {"input_cost_per_million_tokens": 1.0, "output_cost_per_million_tokens": 4.0}


def test_prices_cost_per_million_tokens() -> None:
    prices = Prices(input_per_million=0.15, output_per_million=0.60)
    assert prices.cost(1_000_000, 0) == pytest.approx(0.15)
    assert prices.cost(2_000, 500) == pytest.approx((2_000 * 0.15 + 500 * 0.60) / 1e6)
    assert Prices.from_arguments(None, None) is None
    assert Prices.from_arguments(0, 2.5) == Prices(0.0, 2.5)  # a free kind of token is 0


@pytest.mark.parametrize(
    ("input_cost", "output_cost", "message"),
    [
        (1.0, None, "Give both"),
        (None, 1.0, "Give both"),
        (-1.0, 1.0, "finite price, 0 or more"),
        (1.0, float("nan"), "finite price, 0 or more"),
        ("1", 1.0, "a number of USD"),
    ],
)
def test_bad_prices_are_refused_at_construction(input_cost, output_cost, message) -> None:
    with pytest.raises(ValueError, match=message):
        FakeLLM(
            TextGenerationTask(),
            input_cost_per_million_tokens=input_cost,
            output_cost_per_million_tokens=output_cost,
        )


def test_an_llm_with_prices_puts_each_outputs_cost_in_its_statistics(make_llm) -> None:
    llm = make_llm(**PRICED)
    (row,) = llm.generate([{"input": "how many words"}], num_generations=2)
    for output in row:
        stats = output["statistics"]
        assert stats["cost"] == pytest.approx(
            (stats["input_tokens"] * 1.0 + stats["output_tokens"] * 4.0) / 1e6
        )
    (unpriced,) = make_llm().generate([{"input": "how many words"}])
    assert "cost" not in unpriced[0]["statistics"]  # unknown, never 0


def test_budget_reserves_up_to_its_limit_and_settles_what_was_spent() -> None:
    budget = Budget(1.0)
    assert budget.reserve(0.6) and not budget.reserve(0.5)  # 1.1 would pass the limit
    assert budget.remaining == pytest.approx(0.4)
    budget.settle(0.6, 0.1)  # the request cost far less than its worst case
    assert budget.spent == pytest.approx(0.1) and budget.reserved == 0
    assert budget.reserve(0.5) and budget.remaining == pytest.approx(0.4)
    for limit in (0, -1, float("inf"), float("nan"), True):
        with pytest.raises(ValueError, match="budget must be"):
            Budget(limit)


def test_a_budget_shared_by_threads_never_reserves_past_its_limit() -> None:
    budget = Budget(10.0)
    held: List[float] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def work(seed: int) -> None:
        pick = random.Random(seed)
        start.wait()
        for _ in range(2_000):
            amount = pick.uniform(0.01, 1.0)
            if budget.reserve(amount):
                with lock:
                    held.append(amount)
                    assert budget.spent + budget.reserved <= 10.0 + 1e-9
                budget.settle(amount, amount * pick.random())

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.reserved == pytest.approx(0, abs=1e-9)
    assert held and budget.spent <= 10.0


@pytest.mark.parametrize(
    "text",
    ["plain English words here", "1 2 3 4 5 6 7 8 9 0", "!@#$%^&*()", "数据集生成", "🙂🙃🙂", ""],
)
def test_the_prompt_estimate_bounds_any_byte_level_tokenization(text: str) -> None:
    # No tokenizer makes more byte-level tokens than bytes: each byte alone is the worst case.
    worst = len(text.encode("utf-8"))
    assert prompt_tokens_bound(text) >= worst
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]
    assert prompt_tokens_bound(chat) >= worst + len(b"be brief") + 2 * 4


def test_max_cost_is_every_generation_at_its_worst(make_llm) -> None:
    llm = make_llm(generation_kwargs={"max_new_tokens": 50}, **PRICED)
    rows = [{"input": "a"}, {"input": "bb"}]
    prompts = llm.validate_prompts(rows)
    expected = max_call_cost(Prices(1.0, 4.0), prompts, 3, 50)
    assert llm.max_cost(rows, 3) == pytest.approx(expected)
    assert expected == pytest.approx(
        3 * sum((prompt_tokens_bound(p) * 1.0 + 50 * 4.0) / 1e6 for p in prompts)
    )
    # The call's own `max_new_tokens` wins over the default.
    assert llm.max_cost(rows, 1, {"max_new_tokens": 5}) < llm.max_cost(rows, 1)
    # What it bounds holds: the outputs cost no more.
    outputs = llm.generate(rows, num_generations=3)
    spent = sum(o["statistics"]["cost"] for row in outputs for o in row)
    assert spent <= expected


def test_a_cost_that_cannot_be_bounded_says_why_and_how_to_fix_it(make_llm) -> None:
    assert "has no prices" in make_llm().cost_bound_problem()
    assert "input_cost_per_million_tokens=" in make_llm().cost_bound_problem()
    no_cap = make_llm(**PRICED)
    assert no_cap.max_cost([{"input": "a"}]) is None
    assert "has no `max_new_tokens`" in no_cap.cost_bound_problem()
    assert no_cap.cost_bound_problem({"max_new_tokens": 8}) is None
    assert no_cap.max_cost([{"input": "a"}], 1, {"max_new_tokens": 8}) is not None


def test_a_pool_bounds_a_call_by_its_dearest_member(make_llm: Callable[..., FakeLLM]) -> None:
    cheap = make_llm(model_name="cheap", generation_kwargs={"max_new_tokens": 10}, **PRICED)
    dear = make_llm(
        model_name="dear",
        generation_kwargs={"max_new_tokens": 10},
        input_cost_per_million_tokens=10.0,
        output_cost_per_million_tokens=40.0,
    )
    rows = [{"input": "x"}] * 4
    pool = LLMPool([cheap, dear])
    try:
        assert pool.cost_bound_problem() is None
        assert pool.max_cost(rows, 2) == pytest.approx(dear.max_cost(rows, 2))
    finally:
        pool.close()
    priced = make_llm(model_name="cheap", generation_kwargs={"max_new_tokens": 10}, **PRICED)
    unpriced = LLMPool([priced, make_llm(model_name="free?")])
    try:
        assert unpriced.max_cost(rows) is None
        assert unpriced.cost_bound_problem().startswith("The pool's member #1: FakeLLM 'free?'")
    finally:
        unpriced.close()
