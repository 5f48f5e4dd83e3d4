"""`LlamaCppLLM` on the kit's tiny GGUF: parity with transformers, seeds, chat, processes."""

from __future__ import annotations

import json
from concurrent.futures import Future
from typing import Any, Iterator, List

import pytest

from distilabel_llm.tasks import TextGenerationTask

pytest.importorskip("llama_cpp", reason="the `llama-cpp` extra is not installed")

from distilabel_llm.llm.backends.llama_cpp import LlamaCppLLM, llama_seed

INPUTS = [
    "Hello world",
    "The sky is blue because",
    "Explain why",
    "Write a poem about the sea.",
    "What is 2 + 2?",
    "Name three colors",
]
ROWS = [{"input": text} for text in INPUTS]
GREEDY = {"temperature": 0.0, "repeat_penalty": 1.0}


@pytest.fixture
def make_llama_cpp_llm(llama_model: Any) -> Iterator[Any]:
    """Builds `LlamaCppLLM`s on the shared tiny model, and closes them afterwards."""
    made: List[LlamaCppLLM] = []

    def make(**kwargs: Any) -> LlamaCppLLM:
        kwargs.setdefault("max_new_tokens", 24)
        llm = LlamaCppLLM(llama_model, TextGenerationTask(), **kwargs)
        made.append(llm)
        return llm

    yield make
    for llm in made:
        llm.close()


def _texts(rows: List[List[Any]]) -> List[List[str]]:
    return [[output["raw_output"] for output in row] for row in rows]


@pytest.mark.parametrize(
    ("llama_format", "transformers_format"), [("default", "default"), ("openai", None)]
)
def test_greedy_outputs_equal_transformers_greedy_outputs(
    make_llama_cpp_llm: Any, make_transformers_llm: Any, llama_format: str, transformers_format: Any
) -> None:
    """Completion of strings, and chat completion with the GGUF's own template."""
    llama = make_llama_cpp_llm(prompt_format=llama_format, **GREEDY).generate(ROWS)
    reference = make_transformers_llm(prompt_format=transformers_format).generate(ROWS)

    assert _texts(llama) == _texts(reference)
    for ours, theirs in zip(llama, reference):
        ours_stats, theirs_stats = ours[0]["statistics"], dict(theirs[0]["statistics"])
        theirs_stats.pop("padding_tokens")  # transformers batches the rows; llama.cpp does not
        assert ours_stats == theirs_stats  # counted the same way: the EOS token is not counted


def test_chat_prompts_use_chat_completion(make_llama_cpp_llm: Any) -> None:
    (output,) = make_llama_cpp_llm(prompt_format="openai", **GREEDY).generate(ROWS[:1])[0]

    assert output["prompt_used"][-1] == {"role": "user", "content": INPUTS[0]}
    assert isinstance(output["raw_output"], str)


def test_a_fixed_seed_reproduces_outputs_whatever_the_batch(make_llama_cpp_llm: Any) -> None:
    llm = make_llama_cpp_llm(max_new_tokens=12)

    together = llm.generate(ROWS[:3], num_generations=3)
    alone = [llm.generate([row], num_generations=3)[0] for row in reversed(ROWS[:3])][::-1]
    other_seed = make_llama_cpp_llm(max_new_tokens=12, seed=99).generate(
        ROWS[:3], num_generations=3
    )

    assert [len(row) for row in together] == [3, 3, 3]
    assert _texts(together) == _texts(alone)
    assert len(set(_texts(together)[0])) > 1  # each generation has its own seed
    assert _texts(other_seed) != _texts(together)


@pytest.mark.parametrize("seed", [2**32 - 2, 2**32 - 1, 2**32, 2**63 - 1])
def test_seeds_past_32_bits_reproduce_their_samples(make_llama_cpp_llm: Any, seed: int) -> None:
    """llama.cpp keeps 32 bits of a seed and reads 2^32 - 1 as "random": seeds from there on
    are hashed into the seeds it reproduces, each slot its own."""
    llm = make_llama_cpp_llm(max_new_tokens=12, temperature=1.0, seed=seed)

    first = _texts(llm.generate(ROWS[:2], num_generations=3))

    assert _texts(llm.generate(ROWS[:2], num_generations=3)) == first
    assert [len(set(row)) for row in first] == [3, 3]
    if seed == 2**32:  # not seed 0's samples, as its low 32 bits alone would give
        zero = make_llama_cpp_llm(max_new_tokens=12, temperature=1.0, seed=0)
        assert _texts(zero.generate(ROWS[:2], num_generations=3)) != first


def test_llama_seed_keeps_seeds_below_2_to_the_32_minus_1() -> None:
    assert [llama_seed(v) for v in (0, 7, 2**32 - 2)] == [0, 7, 2**32 - 2]
    large = [llama_seed(v) for v in (2**32 - 1, 2**32, 2**32 + 1, 2**63 - 1, 2**70)]
    assert all(0 <= v < 2**32 - 1 for v in large)
    assert len(set(large)) == len(large) and 0 not in large


def test_greedy_generations_repeat_the_single_greedy_output(make_llama_cpp_llm: Any) -> None:
    rows = make_llama_cpp_llm(**GREEDY).generate(ROWS[:2], num_generations=3)

    assert [len(row) for row in rows] == [3, 3]
    for row in rows:
        assert row[0] == row[1] == row[2]


def test_statistics_come_from_usage_and_bos_is_not_doubled(
    make_llama_cpp_llm: Any, llama_model: Any
) -> None:
    plain = make_llama_cpp_llm(
        prompt_formatting_fn=lambda prompt: prompt.formatted_prompt, **GREEDY
    )
    with_bos = make_llama_cpp_llm(
        prompt_formatting_fn=lambda prompt: "<s>" + prompt.formatted_prompt, **GREEDY
    )

    for row in ROWS:
        (output,) = plain.generate([row])[0]
        (output_bos,) = with_bos.generate([row])[0]
        prompt_tokens = llama_model.tokenize(row["input"].encode(), add_bos=True, special=True)
        assert output["statistics"]["input_tokens"] == len(prompt_tokens)
        assert 1 <= output["statistics"]["output_tokens"] <= 24
        assert output_bos["statistics"] == output["statistics"]
        assert output_bos["raw_output"] == output["raw_output"]


def test_threads_return_a_future_of_the_same_outputs(make_llama_cpp_llm: Any) -> None:
    expected = make_llama_cpp_llm(max_new_tokens=8).generate(ROWS[:4])

    future = make_llama_cpp_llm(max_new_tokens=8, num_threads=3).generate(ROWS[:4])

    assert isinstance(future, Future)
    assert future.result(timeout=60) == expected


def test_from_path_loads_a_gguf_file(tiny_models: Any) -> None:
    with LlamaCppLLM.from_path(
        tiny_models.gguf_path, TextGenerationTask(), n_ctx=256, n_threads=1, max_new_tokens=4
    ) as llm:
        assert llm.model_name == str(tiny_models.gguf_path)
        assert llm.max_new_tokens == 4
        assert len(llm.generate(ROWS[:1])[0]) == 1


def test_bad_arguments_are_rejected(tiny_models: Any, make_llama_cpp_llm: Any) -> None:
    with pytest.raises(FileNotFoundError, match="No GGUF file"):
        LlamaCppLLM.from_path(tiny_models.hf_path / "missing.gguf", TextGenerationTask())
    with pytest.raises(FileNotFoundError, match="No GGUF file"):
        LlamaCppLLM(tiny_models.hf_path / "missing.gguf")
    with pytest.raises(TypeError, match=r"llama_cpp\.Llama or the path of a GGUF file"):
        LlamaCppLLM(42, TextGenerationTask())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_new_tokens"):
        make_llama_cpp_llm(max_new_tokens=0)


@pytest.mark.timeout(60)
def test_missing_extra_names_the_install_command(run_without: Any) -> None:
    done = run_without(
        ["llama_cpp"],
        """
        from distilabel_llm.errors import MissingExtraError
        from distilabel_llm.llm import LlamaCppLLM  # the name imports whatever is installed
        try:
            LlamaCppLLM.from_path('x.gguf', None)
        except MissingExtraError as error:
            print(error)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'distilabel_llm[llama-cpp]'" in done.stdout


@pytest.mark.timeout(90)
def test_runs_inside_a_process_llm(tiny_models: Any, make_llama_cpp_llm: Any) -> None:
    process = pytest.importorskip("distilabel_llm.llm.members.process")
    path = str(tiny_models.gguf_path)
    expected = make_llama_cpp_llm(max_new_tokens=8).generate(ROWS[:3], num_generations=2)

    def load(task: Any) -> Any:
        from distilabel_llm.llm import LlamaCppLLM

        return LlamaCppLLM.from_path(path, task, n_ctx=1024, n_threads=2, max_new_tokens=8)

    with process.ProcessLLM(TextGenerationTask(), load) as llm:
        outputs = llm.generate(ROWS[:3], num_generations=2).result(timeout=60)
        assert llm.model_name == path
    assert outputs == expected


def test_json_outputs_are_compact_as_json_dumps_writes_them(make_llama_cpp_llm: Any) -> None:
    # llama.cpp's schema converter lets a model put a space after any token; sampling from the
    # random weights then pads the JSON in places json.dumps never does.
    schema = {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 10},
            "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
            "sub": {
                "type": "object",
                "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"],
                "additionalProperties": False,
            },
        },
        "required": ["score", "tags", "sub"],
        "additionalProperties": False,
    }
    settings = {"structured_output": schema, "temperature": 1.0, "seed": 0}
    rows = make_llama_cpp_llm(max_new_tokens=96).generate(
        ROWS, num_generations=2, generation_kwargs=settings
    )

    texts = [text for row in _texts(rows) for text in row]
    assert texts and all(text == json.dumps(json.loads(text)) for text in texts), texts
