"""Generation settings through every layer: checked in the caller, carried unchanged to the
backend in a child process or a pool member, never merged across different settings; and
seeds that give every generation slot of a row its own sample, however a pool splits them."""

from __future__ import annotations

import functools
import math
import os
from typing import Any, Callable, Dict, List

import pytest
from process_helpers import gated_load

from distilabel_llm import TextGenerationTask
from distilabel_llm.errors import GenerationSettingsError
from distilabel_llm.llm import LLMPool, ProcessLLM
from distilabel_llm.llm.core.catalogue import check_generation_kwargs
from distilabel_llm.testing import FakeLLM

pytestmark = pytest.mark.timeout(90)

ROWS = [{"input": f"Tell me about the number {i}."} for i in range(4)]


def _texts(rows: List[List[Any]]) -> List[List[str]]:
    return [[output["raw_output"] for output in row] for row in rows]


def _distinct(rows: List[List[Any]]) -> List[int]:
    return [len(set(texts)) for texts in _texts(rows)]


# Checked before any work, with the accepted names.


def test_a_setting_the_backend_does_not_take_is_refused_naming_those_it_takes(task) -> None:
    llm = FakeLLM(task)
    with pytest.raises(GenerationSettingsError, match="`temprature` is not a generation setting"):
        llm.generate(ROWS, generation_kwargs={"temprature": 0.5})
    with pytest.raises(GenerationSettingsError, match=r"accepts: .*max_new_tokens.*temperature"):
        llm.generate(ROWS, generation_kwargs={"do_sample": True})
    with pytest.raises(GenerationSettingsError, match="`temperature` must be a number >= 0"):
        llm.generate(ROWS, generation_kwargs={"temperature": "hot"})
    with pytest.raises(GenerationSettingsError, match="one per row"):
        llm.generate(ROWS, generation_kwargs={"generation_offset": [0, 1]})
    with pytest.raises(ValueError, match="max_new_tokens"):  # a GenerationSettingsError
        FakeLLM(task, generation_kwargs={"max_new_tokens": 0})


# Values of the right kind that no backend can use.

FLOAT_SETTINGS = [
    "temperature",
    "top_p",
    "min_p",
    "typical_p",
    "repetition_penalty",
    "frequency_penalty",
    "presence_penalty",
]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=repr)
@pytest.mark.parametrize("name", FLOAT_SETTINGS)
def test_nan_and_infinities_are_refused_naming_the_setting(name: str, value: float) -> None:
    with pytest.raises(GenerationSettingsError, match=rf"`{name}` cannot be {value!r}: .*finite"):
        check_generation_kwargs({name: value}, None, "LLM")


def test_an_llm_refuses_nan_and_infinities_before_any_work(task) -> None:
    with pytest.raises(GenerationSettingsError, match="`top_p` cannot be inf"):
        FakeLLM(task, generation_kwargs={"top_p": math.inf})
    llm = FakeLLM(task)
    with pytest.raises(GenerationSettingsError, match="`temperature` cannot be nan"):
        llm.generate(ROWS, generation_kwargs={"temperature": math.nan})
    with pytest.raises(GenerationSettingsError, match="`temperature` cannot be 1000"):
        llm.generate(ROWS, generation_kwargs={"temperature": 10**400})  # no float holds it


@pytest.mark.parametrize(
    ("valid", "invalid"),
    [
        ({"seed": 1}, {"seed": True}),
        ({"max_new_tokens": 5}, {"max_new_tokens": 5.0}),
        ({"do_sample": True}, {"do_sample": 1}),
        ({"generation_offset": [0, 1]}, {"generation_offset": [0, True]}),
    ],
    ids=["seed", "max_new_tokens", "do_sample", "generation_offset"],
)
def test_a_value_equal_to_a_valid_one_but_of_another_type_is_refused_after_it(
    valid: Dict[str, Any], invalid: Dict[str, Any]
) -> None:
    assert valid == invalid  # `True == 1` and `5.0 == 5`: equality alone would let it through
    (name,) = invalid
    with pytest.raises(GenerationSettingsError, match=f"`{name}` must be"):
        check_generation_kwargs(invalid, None, "LLM")
    check_generation_kwargs(valid, None, "LLM")
    with pytest.raises(GenerationSettingsError, match=f"`{name}` must be"):
        check_generation_kwargs(invalid, None, "LLM")
    assert check_generation_kwargs(dict(valid), None, "LLM") == valid


def test_an_llm_refuses_a_seed_of_true_right_after_a_seed_of_one(task) -> None:
    llm = FakeLLM(task, show_settings=True)
    (output,) = llm.generate(ROWS[:1], generation_kwargs={"seed": 1})[0]
    assert output["raw_output"].endswith("[seed=1]")
    with pytest.raises(GenerationSettingsError, match="`seed` must be an int >= 0, not True"):
        llm.generate(ROWS[:1], generation_kwargs={"seed": True})


def _looping_schema() -> Dict[str, Any]:
    schema: Dict[str, Any] = {"type": "object", "properties": {}}
    schema["properties"]["child"] = schema
    return schema


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("structured_output", {"enum": {"a", "b"}}, r"`\$.enum` is .*, a set; use a list"),
        ("structured_output", _looping_schema(), r"`\$.properties.child` is the dict that holds"),
        ("structured_output", {"type": "number", "maximum": math.nan}, r"`\$.maximum` is nan"),
        ("structured_output", {"json_schema": {"required": ("a", {1})}}, r"`\$.required\[1\]`"),
        ("structured_output", {"properties": {1: {}}}, r"`\$.properties` has the key 1"),
        ("extra_body", {"guided_json": {"minimum": -math.inf}}, r"`\$.guided_json.minimum` is"),
        ("response_format", {"type": "json_object", "schema": {"enum": {1}}}, "a set"),
    ],
    ids=["set", "loop", "nan", "nested set", "int key", "infinity", "response_format"],
)
def test_what_cannot_be_sent_as_json_is_refused_saying_where(
    name: str, value: Any, problem: str
) -> None:
    with pytest.raises(GenerationSettingsError, match=rf"`{name}` cannot be .*{problem}"):
        check_generation_kwargs({name: value}, None, "LLM")


def test_a_pydantic_class_without_a_json_schema_is_refused_saying_why() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Handler(pydantic.BaseModel):
        callback: Callable[[str], str]  # pydantic has no JSON schema for a function

    for value in (Handler, {"json_schema": Handler}):
        with pytest.raises(
            GenerationSettingsError,
            match=r"`structured_output` cannot be .*pydantic cannot make a JSON schema of Handler",
        ):
            check_generation_kwargs({"structured_output": value}, None, "LLM")


def test_call_settings_override_the_defaults(task) -> None:
    llm = FakeLLM(task, show_settings=True, generation_kwargs={"temperature": 0.1, "seed": 1})
    (output,) = llm.generate(ROWS[:1], generation_kwargs={"temperature": 0.9})[0]
    assert output["raw_output"].endswith("[seed=1, temperature=0.9]")
    assert llm.generation_kwargs == {"temperature": 0.1, "seed": 1}


def test_settings_reach_the_child_and_are_checked_in_the_caller_once_it_loaded(task) -> None:
    load = functools.partial(FakeLLM, show_settings=True)
    with ProcessLLM(task, load) as llm:
        future = llm.generate(ROWS[:1], generation_kwargs={"top_p": 0.5, "stop": "END"})
        (output,) = future.result(timeout=30)[0]
        assert output["raw_output"].endswith("[stop=['END'], top_p=0.5]")
        with pytest.raises(GenerationSettingsError, match="not one ProcessLLM takes"):
            llm.generate(ROWS, generation_kwargs={"do_sample": True})  # known once loaded


def test_before_the_load_the_child_refuses_what_its_model_does_not_take(task, tmp_path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    with ProcessLLM(task, functools.partial(gated_load, gate=str(gate))) as llm:
        with open(gate, "w", encoding="utf-8"):  # opens once the child is loading
            # The call goes while the load is held: the caller cannot know what the model takes.
            future = llm.generate(ROWS, generation_kwargs={"repetition_penalty": 1.2})
        with pytest.raises(GenerationSettingsError, match="not one FakeLLM takes"):
            future.result(timeout=30)
        with pytest.raises(GenerationSettingsError, match="is not a generation setting"):
            llm.generate(ROWS, generation_kwargs={"nonsense": 1})


def test_calls_with_different_settings_are_never_merged(task) -> None:
    load = functools.partial(FakeLLM, show_settings=True, latency=0.2)
    with ProcessLLM(task, load) as llm:
        futures = [
            llm.generate([{"input": str(i)}], generation_kwargs={"temperature": i / 10})
            for i in range(8)
        ]  # queued behind the first while the model works: merged where they may be
        for i, future in enumerate(futures):
            (output,) = future.result(timeout=30)[0]
            assert output["raw_output"] == f"fake #0: {i} [temperature={i / 10!r}]"


@pytest.mark.parametrize("strategy", ["spread", "balance"])
def test_a_pool_gives_each_generation_slot_its_own_number_however_it_splits(
    task, strategy: str
) -> None:
    single = FakeLLM(task).generate(ROWS, num_generations=5)
    load = functools.partial(FakeLLM, show_settings=False)
    with LLMPool([ProcessLLM(task, load), ProcessLLM(task, load)], strategy=strategy) as pool:
        pooled = pool.generate(ROWS, num_generations=5)
    assert _texts(pooled) == _texts(single)


# Seeds on the real backends, in processes and pools.


def _llama_cpp(task: Any, *, path: str) -> Any:
    from distilabel_llm.llm.backends.llama_cpp import LlamaCppLLM

    return LlamaCppLLM.from_path(
        path, task, n_ctx=512, n_threads=1, max_new_tokens=12, temperature=1.0, seed=7
    )


def _transformers(task: Any, *, path: str) -> Any:
    import torch

    from distilabel_llm.llm.backends.transformers import TransformersLLM

    torch.set_num_threads(1)
    return TransformersLLM.from_pretrained(
        path, task, max_new_tokens=12, generation_kwargs={"temperature": 1.0, "seed": 7}
    )


def _needs(module: str) -> Any:
    return pytest.importorskip(module, reason=f"needs {module}")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["spread", "balance"])
def test_llama_cpp_replicas_sample_exactly_what_one_model_samples(
    tiny_models: Any, strategy: str
) -> None:
    _needs("llama_cpp")
    task = TextGenerationTask()
    load = functools.partial(_llama_cpp, path=str(tiny_models.gguf_path))
    alone = load(task).generate(ROWS, num_generations=4)
    assert min(_distinct(alone)) > 1
    with LLMPool.from_replicas(task, load, replicas=2, strategy=strategy) as pool:
        pooled = pool.generate(ROWS, num_generations=4)
        again = pool.generate(ROWS, num_generations=4)
    assert _texts(pooled) == _texts(alone) == _texts(again)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["spread", "balance"])
def test_transformers_replicas_sample_as_many_distinct_outputs_as_one_model(
    tiny_models: Any, strategy: str
) -> None:
    _needs("transformers")
    task = TextGenerationTask()
    load = functools.partial(_transformers, path=str(tiny_models.hf_path))
    model = load(task)
    alone = model.generate(ROWS, num_generations=4)
    assert _texts(model.generate(ROWS, num_generations=4)) == _texts(alone)  # seeded
    with LLMPool.from_replicas(task, load, replicas=2, strategy=strategy) as pool:
        pooled = pool.generate(ROWS, num_generations=4)
        again = pool.generate(ROWS, num_generations=4)
    assert _distinct(pooled) == _distinct(alone) == [4, 4, 4, 4]
    if strategy == "spread":  # the same split each time: the same samples
        assert _texts(again) == _texts(pooled)


@pytest.mark.slow
def test_greedy_decoding_makes_one_generation_per_row_and_copies_it(tiny_models: Any) -> None:
    _needs("llama_cpp")
    task = TextGenerationTask()
    llm = _llama_cpp(task, path=str(tiny_models.gguf_path))
    rows = llm.generate(ROWS, num_generations=3, generation_kwargs={"temperature": 0})
    assert _distinct(rows) == [1, 1, 1, 1]


@pytest.mark.slow
def test_stop_strings_end_outputs_on_both_local_backends(tiny_models: Any) -> None:
    _needs("llama_cpp")
    _needs("transformers")
    task = TextGenerationTask()
    greedy = {"temperature": 0, "max_new_tokens": 24}
    for load in (_llama_cpp, _transformers):
        llm = load(
            task, path=str(tiny_models.gguf_path if load is _llama_cpp else tiny_models.hf_path)
        )
        free = _texts(llm.generate(ROWS[:1], generation_kwargs=greedy))[0][0]
        assert len(free) > 8, free
        stop = free[4:7]
        cut = _texts(llm.generate(ROWS[:1], generation_kwargs={**greedy, "stop": [stop]}))[0][0]
        assert cut == free[: free.index(stop)], (load.__name__, free, cut)
