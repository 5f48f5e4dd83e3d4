"""`TransformersLLM` on the kit's tiny llama: batching, chat templates, statistics, processes."""

from __future__ import annotations

import copy
import io
import json
from concurrent.futures import Future
from typing import Any, List, Tuple

import pytest
from rich.console import Console

from distilabel_llm.llm import LLMPool
from distilabel_llm.llm.core.catalogue import OFFSET
from distilabel_llm.pipeline import Pipeline
from distilabel_llm.pipeline.summary import summary_table
from distilabel_llm.tasks import TextGenerationTask

torch = pytest.importorskip("torch", reason="the `transformers` extra is not installed")
pytest.importorskip("transformers", reason="the `transformers` extra is not installed")

from distilabel_llm.llm.backends.transformers import TransformersLLM  # noqa: E402

INPUTS = [
    "Hello world",
    "The sky is blue because",
    "Explain why",
    "Write a poem about the sea.",
    "What is 2 + 2?",
    "Name three colors",
]
ROWS = [{"input": text} for text in INPUTS]
MAX_NEW_TOKENS = 24  # make_transformers_llm's default (conftest.py)


def _without_padding(rows: List[List[Any]]) -> List[List[Any]]:
    """The rows as they would be in any batch: padding depends on a row's batch-mates."""
    rows = copy.deepcopy(rows)
    for outputs in rows:
        for output in outputs:
            output["statistics"].pop("padding_tokens")
    return rows


def _reference_greedy(model: Any, tokenizer: Any, prompt: str) -> List[int]:
    """Greedy tokens straight from `model.generate`, one unpadded prompt, up to EOS."""
    ids = tokenizer(prompt, add_special_tokens=not prompt.startswith("<s>"), return_tensors="pt")
    with torch.inference_mode():
        generated = model.generate(**ids, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
    return generated[0, ids.input_ids.shape[1] :].tolist()


@pytest.mark.parametrize("prompt_format", [None, "default"])
def test_batched_greedy_equals_one_by_one_greedy(
    make_transformers_llm: Any, hf_model_and_tokenizer: Tuple[Any, Any], prompt_format: Any
) -> None:
    model, tokenizer = hf_model_and_tokenizer
    llm = make_transformers_llm(prompt_format=prompt_format)

    batched = llm.generate(ROWS)

    lengths = set()
    for row, outputs in zip(ROWS, batched):
        (output,) = outputs
        expected = _reference_greedy(model, tokenizer, output["prompt_used"])
        assert output["raw_output"] == tokenizer.decode(expected, skip_special_tokens=True)
        ended = expected[-1] == tokenizer.eos_token_id
        assert output["statistics"]["output_tokens"] == len(expected) - ended  # EOS not counted
        assert _without_padding(llm.generate([row])) == _without_padding([outputs])
        lengths.add(len(expected))
    # Rows end at different lengths, so the batch was padded after some rows' EOS.
    assert len(lengths) > 1


def test_padding_is_reported_for_each_generation(make_transformers_llm: Any) -> None:
    statistics = [outputs[0]["statistics"] for outputs in make_transformers_llm().generate(ROWS)]
    width = max(s["input_tokens"] for s in statistics)
    # A row shorter than the limit ended on an EOS, which was one more decoding step.
    steps = max(s["output_tokens"] + (s["output_tokens"] < MAX_NEW_TOKENS) for s in statistics)
    for s in statistics:  # its prompt padded to the longest, and the steps after its EOS
        after_end = max(0, steps - s["output_tokens"] - 1)
        assert s["padding_tokens"] == width - s["input_tokens"] + after_end
    assert any(s["padding_tokens"] > 0 for s in statistics)
    (alone,) = make_transformers_llm().generate(ROWS[:1])
    assert alone[0]["statistics"]["padding_tokens"] == 0


def test_a_jobs_summary_gives_the_share_of_padding(make_transformers_llm: Any) -> None:
    pipeline = Pipeline(generator=make_transformers_llm())
    pipeline.generate(ROWS, batch_size=len(ROWS), display_progress_bar=False)
    stats = pipeline.stats
    assert stats is not None
    (model,) = stats.padding_tokens_by_model
    assert 0 < stats.padding_share(model) < 1
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(summary_table(stats))
    assert f"padding: {stats.padding_share(model):.0%} of the positions computed" in (
        console.export_text()
    )


def test_batches_grouped_by_prompt_length_give_the_same_rows_in_input_order(
    make_transformers_llm: Any,
) -> None:
    whole = make_transformers_llm().generate(ROWS, num_generations=2)
    grouped = make_transformers_llm(batch_size=2).generate(ROWS, num_generations=2)
    assert _without_padding(grouped) == _without_padding(whole)
    padding = [
        sum(output["statistics"]["padding_tokens"] for outputs in rows for output in outputs)
        for rows in (grouped, whole)
    ]
    assert padding[0] < padding[1]
    with pytest.raises(ValueError, match="batch_size"):
        make_transformers_llm(batch_size=0)


def test_continuous_batching_gives_the_static_batches_greedy_rows(
    make_transformers_llm: Any,
) -> None:
    static = make_transformers_llm(batch_size=2).generate(ROWS, num_generations=2)
    continuous = make_transformers_llm(batch_size=2, continuous_batching=True)
    rows = continuous.generate(ROWS, num_generations=2)
    assert _without_padding(rows) == _without_padding(static)
    assert all(o["statistics"]["padding_tokens"] == 0 for row in rows for o in row)
    # Settings it cannot honour run in static batches, with the same results.
    stop = {"max_new_tokens": MAX_NEW_TOKENS, "stop": [" "]}
    assert continuous.generate(ROWS, generation_kwargs=stop) == make_transformers_llm(
        batch_size=2
    ).generate(ROWS, generation_kwargs=stop)


def test_continuous_batching_samples_distinct_generations(make_transformers_llm: Any) -> None:
    llm = make_transformers_llm(continuous_batching=True, temperature=1.0)
    rows = llm.generate(ROWS[:2], num_generations=3)
    assert [len({output["raw_output"] for output in row}) for row in rows] == [3, 3]


def test_continuous_batching_falls_back_where_transformers_lacks_it(
    make_transformers_llm: Any,
    hf_model_and_tokenizer: Tuple[Any, Any],
    monkeypatch: Any,
    caplog: Any,
) -> None:
    model, _ = hf_model_and_tokenizer
    monkeypatch.setattr(type(model), "generate_batch", None)  # as in transformers 4
    with caplog.at_level("WARNING", logger="distilabel_llm"):
        llm = make_transformers_llm(continuous_batching=True)
    assert "has no continuous batching" in caplog.text
    assert llm.generate(ROWS) == make_transformers_llm().generate(ROWS)


SEEDED = {"temperature": 1.0, "seed": 3}


def _texts(rows: List[List[Any]]) -> List[List[str]]:
    return [[output["raw_output"] for output in row] for row in rows]


def test_seeded_samples_do_not_depend_on_the_batch(make_transformers_llm: Any) -> None:
    llm = make_transformers_llm(generation_kwargs=SEEDED)
    together = _texts(llm.generate(ROWS, num_generations=3))

    torch.manual_seed(0)  # torch's global generator plays no part
    alone = [_texts(llm.generate([row], num_generations=3))[0] for row in ROWS]
    reversed_order = _texts(llm.generate(ROWS[::-1], num_generations=3))[::-1]
    grouped = _texts(
        make_transformers_llm(batch_size=2, generation_kwargs=SEEDED).generate(ROWS, 3)
    )
    # Continuous batching leaves a seeded sampling to static batches.
    continuous = make_transformers_llm(
        batch_size=2, continuous_batching=True, generation_kwargs=SEEDED
    )
    assert together == alone == reversed_order == grouped == _texts(continuous.generate(ROWS, 3))
    assert [len(set(row)) for row in together] == [3] * len(ROWS)  # each slot its own sample
    other_seed = llm.generate(ROWS, num_generations=3, generation_kwargs={**SEEDED, "seed": 4})
    assert all(a != b for a, b in zip(_texts(other_seed), together))


def test_seeded_slots_are_sampled_alike_whoever_fills_them(make_transformers_llm: Any) -> None:
    """A pool member filling slots 2.. of each row (`generation_offset`) samples them as one
    model filling every slot does; and the same prompt in two rows gets the same samples."""
    llm = make_transformers_llm(batch_size=1, generation_kwargs=SEEDED)
    whole = _texts(llm.generate(ROWS[:3], num_generations=4))
    tail = llm.generate(ROWS[:3], num_generations=2, generation_kwargs={**SEEDED, OFFSET: 2})
    assert _texts(tail) == [row[2:] for row in whole]
    twice = _texts(llm.generate([ROWS[0], ROWS[0]], num_generations=4))
    assert twice == [whole[0], whole[0]]


@pytest.mark.parametrize("narrow", [{"top_k": 1}, {"top_p": 0.01}])
def test_seeded_sampling_applies_the_sampling_filters(
    make_transformers_llm: Any, narrow: Any
) -> None:
    """Filters that leave only the likeliest token make a seeded sampling greedy."""
    greedy = _texts(make_transformers_llm().generate(ROWS))
    narrowed = make_transformers_llm(generation_kwargs={**SEEDED, **narrow}).generate(
        ROWS, num_generations=2
    )
    assert _texts(narrowed) == [row * 2 for row in greedy]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("strategy", ["spread", "balance"])
def test_a_pool_of_replicas_samples_what_one_model_samples(
    make_transformers_llm: Any, tiny_models: Any, strategy: str
) -> None:
    import transformers

    # Each member its own copy of the model, since members generate at the same time.
    copy_of_model = transformers.AutoModelForCausalLM.from_pretrained(tiny_models.hf_path)
    members = [make_transformers_llm(), make_transformers_llm(model=copy_of_model.eval())]
    expected = _texts(
        make_transformers_llm().generate(ROWS, num_generations=4, generation_kwargs=SEEDED)
    )
    with LLMPool(members, strategy=strategy, seed=0) as pool:
        pooled = pool.generate(ROWS, num_generations=4, generation_kwargs=SEEDED)
    assert _texts(pooled) == expected


def _job_rows(path: Any) -> List[Any]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_resumed_seeded_job_gives_the_uninterrupted_jobs_rows(
    make_transformers_llm: Any, tmp_path: Any
) -> None:
    def run(checkpoint: Any) -> None:
        Pipeline(generator=make_transformers_llm()).generate(
            ROWS,
            num_generations=2,
            batch_size=3,
            checkpoint=checkpoint,
            display_progress_bar=False,
            generation_kwargs=SEEDED,
        )

    uninterrupted = tmp_path / "whole.jsonl"
    run(uninterrupted)
    # As if killed after two rows: the next run makes rows 2-5, in batches of other rows.
    resumed = tmp_path / "resumed.jsonl"
    resumed.write_text("".join(f"{json.dumps(row)}\n" for row in _job_rows(uninterrupted)[:2]))
    job = uninterrupted.with_name(uninterrupted.name + ".job.json")
    resumed.with_name(resumed.name + ".job.json").write_text(job.read_text())
    run(resumed)
    assert _job_rows(resumed) == _job_rows(uninterrupted)


def test_default_prompts_use_the_chat_template_without_a_second_bos(
    make_transformers_llm: Any, hf_model_and_tokenizer: Tuple[Any, Any]
) -> None:
    _, tokenizer = hf_model_and_tokenizer
    task = TextGenerationTask()
    llm = make_transformers_llm()

    (output,) = llm.generate(ROWS[:1])[0]

    messages = task.generate_prompt(**ROWS[0]).format_as("openai")
    expected = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert output["prompt_used"] == expected
    assert expected.startswith("<s>")
    prompt_ids = tokenizer(expected, add_special_tokens=False).input_ids
    assert output["statistics"]["input_tokens"] == len(prompt_ids)


def test_chat_messages_are_rendered_with_the_chat_template(make_transformers_llm: Any) -> None:
    from_template = make_transformers_llm().generate(ROWS)
    from_messages = make_transformers_llm(prompt_format="openai").generate(ROWS)

    assert isinstance(from_messages[0][0]["prompt_used"], list)
    assert [row[0]["raw_output"] for row in from_messages] == [
        row[0]["raw_output"] for row in from_template
    ]


def test_a_tokenizer_without_chat_template_gets_the_default_format(
    make_transformers_llm: Any, hf_model_and_tokenizer: Tuple[Any, Any]
) -> None:
    tokenizer = copy.deepcopy(hf_model_and_tokenizer[1])
    tokenizer.chat_template = None
    task = TextGenerationTask()

    llm = make_transformers_llm(tokenizer=tokenizer)
    (output,) = llm.generate(ROWS[:1])[0]

    assert output["prompt_used"] == task.generate_prompt(**ROWS[0]).format_as("default")
    with pytest.raises(ValueError, match="no chat template"):
        make_transformers_llm(tokenizer=tokenizer, prompt_format="openai").generate(ROWS[:1])


def test_statistics_count_prompt_and_output_tokens(
    make_transformers_llm: Any, hf_model_and_tokenizer: Tuple[Any, Any]
) -> None:
    _, tokenizer = hf_model_and_tokenizer
    llm = make_transformers_llm(prompt_format="default", max_new_tokens=5)

    for outputs in llm.generate(ROWS):
        (output,) = outputs
        prompt_ids = tokenizer(output["prompt_used"]).input_ids
        assert output["statistics"]["input_tokens"] == len(prompt_ids)
        assert 1 <= output["statistics"]["output_tokens"] <= 5
        assert output["model_name"] == llm.model_name


def test_greedy_generations_repeat_the_single_greedy_output(make_transformers_llm: Any) -> None:
    rows = make_transformers_llm().generate(ROWS[:3], num_generations=3)

    assert [len(row) for row in rows] == [3, 3, 3]
    for row in rows:
        assert row[0] == row[1] == row[2]


def test_sampled_generations_differ_and_follow_the_torch_seed(make_transformers_llm: Any) -> None:
    llm = make_transformers_llm(do_sample=True, temperature=1.0, top_k=0)

    torch.manual_seed(7)
    first = llm.generate(ROWS[:2], num_generations=3)
    torch.manual_seed(7)
    second = llm.generate(ROWS[:2], num_generations=3)

    assert [len(row) for row in first] == [3, 3]
    assert first == second
    assert len({output["raw_output"] for output in first[0]}) > 1


def test_threads_return_a_future_of_the_same_outputs(make_transformers_llm: Any) -> None:
    expected = make_transformers_llm().generate(ROWS[:3])

    future = make_transformers_llm(num_threads=2).generate(ROWS[:3])

    assert isinstance(future, Future)  # each thread's batch has its own padding
    assert _without_padding(future.result(timeout=60)) == _without_padding(expected)


def test_from_pretrained_loads_path_dtype_and_options(tiny_models: Any) -> None:
    with TransformersLLM.from_pretrained(
        str(tiny_models.hf_path), TextGenerationTask(), torch_dtype="float32", max_new_tokens=3
    ) as llm:
        assert llm.model_name == str(tiny_models.hf_path)
        assert llm.model.dtype == torch.float32
        assert llm.max_new_tokens == 3
        assert len(llm.generate(ROWS[:1])[0]) == 1


def test_bad_arguments_are_rejected(make_transformers_llm: Any) -> None:
    with pytest.raises(ValueError, match="max_new_tokens"):
        make_transformers_llm(max_new_tokens=0)


@pytest.mark.timeout(60)
def test_missing_extra_names_the_install_command(run_without: Any) -> None:
    done = run_without(
        ["torch"],
        """
        from distilabel_llm.errors import MissingExtraError
        from distilabel_llm.llm import TransformersLLM  # the name imports whatever is installed
        try:
            TransformersLLM.from_pretrained('x', None)
        except MissingExtraError as error:
            print(error)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'distilabel_llm[transformers]'" in done.stdout


@pytest.mark.timeout(90)
def test_runs_inside_a_process_llm(tiny_models: Any, make_transformers_llm: Any) -> None:
    process = pytest.importorskip("distilabel_llm.llm.members.process")
    path = str(tiny_models.hf_path)
    expected = make_transformers_llm(max_new_tokens=8).generate(ROWS[:3], num_generations=2)

    def load(task: Any) -> Any:
        from distilabel_llm.llm import TransformersLLM

        return TransformersLLM.from_pretrained(path, task, max_new_tokens=8)

    with process.ProcessLLM(TextGenerationTask(), load) as llm:
        outputs = llm.generate(ROWS[:3], num_generations=2).result(timeout=60)
        assert llm.model_name == path
    assert outputs == expected
