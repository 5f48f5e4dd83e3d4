"""`LLM.generate` and friends: threading, row order, invalid rows, progress, errors, prompts."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import pytest
from rich.pretty import pretty_repr

from distilabel_llm import LLM, LLMOutput, Prompt, Task
from distilabel_llm.tasks import ChatMessages, JudgeLMTask, TextGenerationTask, UltraFeedbackTask
from distilabel_llm.testing import FakeLLM

REPO = Path(__file__).resolve().parents[2]
SYSTEM = TextGenerationTask().system_prompt


def _rows(*texts: Optional[str]) -> List[Dict[str, Any]]:
    return [{"input": text} for text in texts]


def _result(result: Any) -> List[List[LLMOutput]]:
    """The outputs, waiting for them if `generate` returned a Future."""
    return result.result(timeout=10) if isinstance(result, Future) else result


def _expected(text: str, num_generations: int, model_name: str = "fake") -> List[LLMOutput]:
    prompt = f"{SYSTEM}\n{text}"
    return [
        LLMOutput(
            model_name=model_name,
            prompt_used=prompt,
            raw_output=f"{model_name} #{k}: {text}",
            parsed_output={"generations": f"{model_name} #{k}: {text}"},
            statistics={  # FakeLLM counts words
                "input_tokens": len(prompt.split()),
                "output_tokens": len(f"{model_name} #{k}: {text}".split()),
            },
        )
        for k in range(num_generations)
    ]


def _empty(num_generations: int, model_name: str = "fake") -> List[LLMOutput]:
    return [
        LLMOutput(model_name=model_name, prompt_used=None, raw_output=None, parsed_output=None)
        for _ in range(num_generations)
    ]


class _Advances:
    """A thread-safe progress callback recording each `advance`."""

    def __init__(self) -> None:
        self.calls: List[int] = []
        self._lock = threading.Lock()

    def __call__(self, advance: int = 1) -> None:
        with self._lock:
            self.calls.append(advance)


class _RecordingLLM(FakeLLM):
    """A FakeLLM recording the rows of every `_generate` call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: List[List[Dict[str, Any]]] = []
        self._batches_lock = threading.Lock()

    def _generate(self, inputs: List[Dict[str, Any]], num_generations: int = 1) -> Any:
        with self._batches_lock:
            self.batches.append(list(inputs))
        return super()._generate(inputs, num_generations)


class _ChatmlBackend(FakeLLM):
    """A backend whose own default rendering is ChatML."""

    def _format_default(self, prompt: Prompt) -> Union[str, ChatMessages]:
        return prompt.format_as("chatml")


class _ScriptedLLM(LLM):
    """Answers each row with its `reply` key, to feed the task exact text to parse."""

    @property
    def model_name(self) -> str:
        return "scripted"

    def _generate(self, inputs: List[Dict[str, Any]], num_generations: int = 1) -> Any:
        prompts = self._generate_prompts(inputs)
        return [
            [self._output(prompt, row["reply"]) for _ in range(num_generations)]
            for row, prompt in zip(inputs, prompts)
        ]


class _WrongShapeLLM(FakeLLM):
    def __init__(self, *args: Any, drop_row: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.drop_row = drop_row

    def _generate(self, inputs: List[Dict[str, Any]], num_generations: int = 1) -> Any:
        rows = super()._generate(inputs, num_generations)
        return rows[1:] if self.drop_row else [row[1:] for row in rows]


@pytest.fixture
def closing() -> Any:
    """Registers LLMs built in a test so they are closed afterwards."""
    made: List[LLM] = []

    def register(llm: Any) -> Any:
        made.append(llm)
        return llm

    yield register
    for llm in made:
        llm.close()


# Construction and the abstract contract


def test_llm_is_abstract() -> None:
    with pytest.raises(TypeError):
        LLM(TextGenerationTask())  # type: ignore[abstract]

    class NoModelName(LLM):
        def _generate(self, inputs: Any, num_generations: int = 1) -> Any:
            return []

    with pytest.raises(TypeError, match="model_name"):
        NoModelName(TextGenerationTask())  # type: ignore[abstract]


@pytest.mark.parametrize("num_threads", [0, -1, 1.5, "2", True])
def test_bad_num_threads(num_threads: Any) -> None:
    with pytest.raises(ValueError, match="`num_threads` must be a positive integer or None"):
        FakeLLM(TextGenerationTask(), num_threads=num_threads)


def test_bad_prompt_format_names_the_supported_ones() -> None:
    with pytest.raises(ValueError, match="'default', 'openai', 'llama2', 'chatml', 'zephyr'"):
        FakeLLM(TextGenerationTask(), prompt_format="mistral")  # type: ignore[arg-type]


@pytest.mark.parametrize("num_threads", [None, 2])
@pytest.mark.parametrize("num_generations", [0, -2, 1.0, True])
def test_bad_num_generations(make_llm: Any, num_threads: Any, num_generations: Any) -> None:
    llm = make_llm(num_threads=num_threads)
    with pytest.raises(ValueError, match="`num_generations` must be a positive integer"):
        llm.generate(_rows("a"), num_generations=num_generations)


@pytest.mark.parametrize("num_threads", [None, 2])
def test_non_dict_rows_are_rejected_naming_the_row(make_llm: Any, num_threads: Any) -> None:
    llm = make_llm(num_threads=num_threads)
    with pytest.raises(TypeError, match=r"row 1 is a str: 'b'"):
        llm.generate([{"input": "a"}, "b"])
    with pytest.raises(TypeError, match="row 0 is a str: 'input'"):
        llm.generate({"input": "a"})  # type: ignore[arg-type]
    assert llm.calls == 0


def test_num_threads_and_return_futures(make_llm: Any) -> None:
    plain, threaded = make_llm(), make_llm(num_threads=3)
    assert (plain.num_threads, plain.return_futures) == (None, False)
    assert (threaded.num_threads, threaded.return_futures) == (3, True)


def test_repr_and_rich_repr(make_llm: Any) -> None:
    llm = make_llm(num_threads=2, prompt_format="chatml", model_name="tiny")
    expected = (
        "FakeLLM(task='TextGenerationTask', num_threads=2, prompt_format='chatml', "
        "model_name='tiny')"
    )
    assert repr(llm) == expected
    assert dict(llm.__rich_repr__()) == {
        "task": "TextGenerationTask",
        "num_threads": 2,
        "prompt_format": "chatml",
        "model_name": "tiny",
    }
    assert pretty_repr(llm, max_width=200) == expected


# Generation without threads


def test_unthreaded_makes_one_call_for_all_rows(closing: Any) -> None:
    llm = closing(_RecordingLLM(TextGenerationTask()))
    result = llm.generate(_rows("a", "b", "c"), num_generations=2)
    assert isinstance(result, list)
    assert result == [_expected("a", 2), _expected("b", 2), _expected("c", 2)]
    assert llm.batches == [_rows("a", "b", "c")]


def test_unthreaded_exception_is_raised(make_llm: Any) -> None:
    llm = make_llm(raise_on="boom")
    with pytest.raises(RuntimeError, match="told to fail on 'boom'"):
        llm.generate(_rows("a", "boom"))


# Generation on a thread pool


def test_threaded_returns_future_with_one_call_per_row(closing: Any) -> None:
    llm = closing(_RecordingLLM(TextGenerationTask(), num_threads=4, latency=0.001))
    texts = [f"row {i}" for i in range(20)]
    future = llm.generate(_rows(*texts), num_generations=2)
    assert isinstance(future, Future)
    assert future.result(timeout=10) == [_expected(text, 2) for text in texts]
    assert sorted(batch[0]["input"] for batch in llm.batches) == sorted(texts)
    assert all(len(batch) == 1 for batch in llm.batches)


def test_threaded_rows_keep_input_order_when_completing_in_reverse(make_gated: Any) -> None:
    texts = [f"r{i}" for i in range(6)]
    llm = make_gated(texts, num_threads=len(texts))
    future = llm.generate(_rows(*texts))
    for text in texts:
        assert llm.started(text).wait(timeout=10)
    for text in reversed(texts):
        llm.release(text)
        assert llm.finished(text).wait(timeout=10)
    result = future.result(timeout=10)
    assert [row[0]["raw_output"] for row in result] == [f"{text} #0" for text in texts]
    assert len(llm.calls) == len(texts)


def test_threaded_runs_num_threads_rows_at_once(make_gated: Any) -> None:
    texts = [f"r{i}" for i in range(8)]
    llm = make_gated(texts, num_threads=4)
    future = llm.generate(_rows(*texts))
    for text in texts[:4]:
        assert llm.started(text).wait(timeout=10)
    # Four workers are all blocked on their gates, so no fifth row can have begun.
    assert not any(llm.started(text).is_set() for text in texts[4:])
    for text in texts:
        llm.release(text)
    assert len(future.result(timeout=10)) == len(texts)


def test_threaded_with_fake_latency(make_llm: Any) -> None:
    llm = make_llm(num_threads=8, latency=0.01, latency_per_generation=0.001)
    texts = [str(i) for i in range(32)]
    assert llm.generate(_rows(*texts), num_generations=3).result(timeout=10) == [
        _expected(text, 3) for text in texts
    ]


def test_threaded_exception_is_set_on_the_future(make_llm: Any) -> None:
    llm = make_llm(num_threads=2, raise_on="boom")
    future = llm.generate(_rows("a", "boom", "c"))
    error = future.exception(timeout=10)
    assert isinstance(error, RuntimeError)
    assert "told to fail on 'boom'" in str(error)
    with pytest.raises(RuntimeError, match="boom"):
        future.result()


def test_threaded_pool_is_reused_across_calls(make_llm: Any) -> None:
    llm = make_llm(num_threads=2)
    first = llm.generate(_rows("a")).result(timeout=10)
    second = llm.generate(_rows("b")).result(timeout=10)
    assert first == [_expected("a", 1)] and second == [_expected("b", 1)]


# Shapes, empty inputs and invalid rows


@pytest.mark.parametrize("num_threads", [None, 3])
@pytest.mark.parametrize("num_generations", [1, 4])
def test_every_result_is_rows_by_generations(
    make_llm: Any, num_threads: Any, num_generations: int
) -> None:
    llm = make_llm(num_threads=num_threads)
    inputs = [*_rows("a", "b"), {}, *_rows("d", None)]
    result = _result(llm.generate(inputs, num_generations=num_generations))
    assert len(result) == len(inputs)
    assert all(len(row) == num_generations for row in result)


@pytest.mark.parametrize("num_threads", [None, 2])
def test_generate_nothing(closing: Any, num_threads: Any) -> None:
    llm = closing(_RecordingLLM(TextGenerationTask(), num_threads=num_threads))
    advances = _Advances()
    result = llm.generate([], num_generations=3, progress_callback_func=advances)
    if num_threads is None:
        assert result == []
    else:
        assert isinstance(result, Future) and result.done()
        assert result.result() == []
    assert llm.batches == []
    assert sum(advances.calls) == 0


@pytest.mark.parametrize("num_threads", [None, 2])
def test_rows_missing_keys_are_filled_and_warned(
    closing: Any, caplog: pytest.LogCaptureFixture, num_threads: Any
) -> None:
    llm = closing(_RecordingLLM(TextGenerationTask(), num_threads=num_threads))
    inputs = [{"input": "a"}, {"prompt": "b"}, {"input": None}, {"input": "d"}]
    with caplog.at_level(logging.WARNING, logger="distilabel_llm"):
        result = _result(llm.generate(inputs, num_generations=2))
    assert result == [_expected("a", 2), _empty(2), _empty(2), _expected("d", 2)]
    sent = sorted(row["input"] for batch in llm.batches for row in batch)
    assert sent == ["a", "d"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "Row 1 is missing ['input']" in warnings[0]
    assert "Row 2 is missing ['input']" in warnings[1]
    assert all("TextGenerationTask" in message for message in warnings)


@pytest.mark.parametrize("num_threads", [None, 2])
def test_all_rows_invalid_sends_nothing(closing: Any, num_threads: Any) -> None:
    llm = closing(_RecordingLLM(JudgeLMTask(), num_threads=num_threads))
    advances = _Advances()
    inputs = [{"input": "q"}, {"generations": ["a"]}]
    result = _result(llm.generate(inputs, num_generations=2, progress_callback_func=advances))
    assert result == [_empty(2), _empty(2)]
    assert llm.batches == []
    assert sum(advances.calls) == 4


@pytest.mark.parametrize("num_threads", [None, 2])
@pytest.mark.parametrize("drop_row", [True, False])
def test_wrong_shape_from_generate_is_an_error(
    closing: Any, num_threads: Any, drop_row: bool
) -> None:
    llm = closing(_WrongShapeLLM(TextGenerationTask(), num_threads=num_threads, drop_row=drop_row))
    with pytest.raises(RuntimeError, match=r"_WrongShapeLLM\._generate returned"):
        _result(llm.generate(_rows("a", "b"), num_generations=2))


# Progress accounting


def test_unthreaded_progress_advances_once_by_everything(make_llm: Any) -> None:
    advances = _Advances()
    make_llm().generate(_rows("a", None, "c"), num_generations=3, progress_callback_func=advances)
    assert advances.calls == [9]


def test_threaded_progress_advances_per_row(make_llm: Any) -> None:
    advances = _Advances()
    llm = make_llm(num_threads=4)
    inputs = [*_rows(*(str(i) for i in range(50))), {}, {}]
    future = llm.generate(inputs, num_generations=3, progress_callback_func=advances)
    future.result(timeout=10)
    # Every advance has happened by the time the Future resolves.
    assert sum(advances.calls) == len(inputs) * 3
    assert sorted(advances.calls) == [3] * 50 + [6]


def test_threaded_progress_skips_failed_rows(make_llm: Any) -> None:
    advances = _Advances()
    llm = make_llm(num_threads=1, raise_on="boom")
    future = llm.generate(_rows("boom", "b"), progress_callback_func=advances)
    assert isinstance(future.exception(timeout=10), RuntimeError)
    llm.close()  # waits for row "b"
    assert advances.calls == [1]


# Prompts: precedence, pre-rendered prompts, validate_prompts


def test_default_rendering_is_the_default_format(make_llm: Any) -> None:
    assert make_llm().validate_prompts(_rows("q")) == [f"{SYSTEM}\nq"]


def test_backend_default_when_no_format_is_chosen(closing: Any) -> None:
    llm = closing(_ChatmlBackend(TextGenerationTask(system_prompt="S")))
    assert llm.validate_prompts(_rows("q")) == [Prompt("S", "q").format_as("chatml")]


def test_prompt_format_wins_over_backend_default(closing: Any) -> None:
    llm = closing(_ChatmlBackend(TextGenerationTask(system_prompt="S"), prompt_format="llama2"))
    assert llm.validate_prompts(_rows("q")) == [Prompt("S", "q").format_as("llama2")]


def test_prompt_formatting_fn_wins_over_prompt_format(closing: Any) -> None:
    def shout(prompt: Prompt) -> str:
        return f"{prompt.system_prompt.upper()}|{prompt.formatted_prompt.upper()}"

    llm = closing(
        _ChatmlBackend(
            TextGenerationTask(system_prompt="s"),
            prompt_format="llama2",
            prompt_formatting_fn=shout,
        )
    )
    assert llm.validate_prompts(_rows("q")) == ["S|Q"]
    assert llm.generate(_rows("q"))[0][0]["prompt_used"] == "S|Q"


@pytest.mark.parametrize("num_threads", [None, 2])
def test_prompt_used_is_what_validate_prompts_shows(make_llm: Any, num_threads: Any) -> None:
    llm = make_llm(num_threads=num_threads, prompt_format="openai")
    inputs = [*_rows("a", "b"), {}]
    prompts = llm.validate_prompts(inputs)
    assert prompts[2] is None
    assert prompts[0] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "a"},
    ]
    result = _result(llm.generate(inputs))
    assert [row[0]["prompt_used"] for row in result] == prompts


class _PreRenderedTask(Task):
    """Returns an already rendered prompt: a string, or chat messages for `chat` rows."""

    def generate_prompt(self, input: str, chat: bool = False, **_: Any) -> Any:
        return [{"role": "user", "content": input}] if chat else f"RAW {input}"

    def parse_output(self, output: str) -> Dict[str, Any]:
        return {"text": output}

    @property
    def input_args_names(self) -> List[str]:
        return ["input"]

    @property
    def output_args_names(self) -> List[str]:
        return ["text"]


def test_pre_rendered_prompts_are_sent_as_is(closing: Any) -> None:
    calls: List[Prompt] = []

    def formatting_fn(prompt: Prompt) -> str:
        calls.append(prompt)
        return "never"

    llm = closing(
        _ChatmlBackend(
            _PreRenderedTask(), prompt_format="llama2", prompt_formatting_fn=formatting_fn
        )
    )
    inputs = [{"input": "a"}, {"input": "b", "chat": True}]
    expected = ["RAW a", [{"role": "user", "content": "b"}]]
    assert llm.validate_prompts(inputs) == expected
    assert [row[0]["prompt_used"] for row in llm.generate(inputs)] == expected
    assert calls == []


# Parsing through the LLM


@pytest.mark.parametrize("num_threads", [None, 2])
def test_parse_errors_become_none_with_a_warning(
    closing: Any, caplog: pytest.LogCaptureFixture, num_threads: Any
) -> None:
    llm = closing(_ScriptedLLM(JudgeLMTask(), num_threads=num_threads))
    inputs = [
        {"input": "q", "generations": ["x", "y"], "reply": "8 6\nBecause ..."},
        {"input": "q", "generations": ["x", "y"], "reply": "I like the first one."},
    ]
    with caplog.at_level(logging.WARNING, logger="distilabel_llm"):
        result = _result(llm.generate(inputs, num_generations=2))
    assert [output["parsed_output"] for output in result[0]] == [
        {"rating": [8.0, 6.0], "rationale": "Because ..."}
    ] * 2
    assert [output["raw_output"] for output in result[1]] == ["I like the first one."] * 2
    assert [output["parsed_output"] for output in result[1]] == [None, None]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("JudgeLMTask could not parse an output of scripted" in w for w in warnings)
    assert all("space-separated scores" in w for w in warnings)


def test_unparseable_fake_output_does_not_crash_the_batch(
    make_llm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    llm = make_llm(UltraFeedbackTask.for_helpfulness(), num_threads=2)
    inputs = [{"input": str(i), "generations": ["a", "b"]} for i in range(5)]
    with caplog.at_level(logging.WARNING, logger="distilabel_llm"):
        result = llm.generate(inputs).result(timeout=10)
    assert [row[0]["parsed_output"] for row in result] == [None] * 5
    assert [row[0]["raw_output"] for row in result] == [f"fake #0: {i}" for i in range(5)]
    assert sum("could not parse" in r.getMessage() for r in caplog.records) == 5


def test_output_statistics_are_optional(make_llm: Any) -> None:
    llm = make_llm()
    assert "statistics" not in llm._output("p", "r")
    stats = {"input_tokens": 3, "output_tokens": 5}
    output = llm._output("p", "r", statistics=stats)
    assert output["statistics"] == stats
    assert output["parsed_output"] == {"generations": "r"}
    assert llm._output("p", None)["parsed_output"] is None


# Closing


def _generate_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("FakeLLM-generate")]


def test_close_waits_for_running_rows_and_stops_the_threads(make_llm: Any) -> None:
    llm = make_llm(num_threads=4, latency=0.02)
    future = llm.generate(_rows(*(str(i) for i in range(8))))
    assert _generate_threads()
    llm.close()
    assert future.done() and len(future.result()) == 8
    assert _generate_threads() == []
    llm.close()  # idempotent


@pytest.mark.parametrize("num_threads", [None, 2])
def test_generate_after_close_is_an_error(make_llm: Any, num_threads: Any) -> None:
    llm = make_llm(num_threads=num_threads)
    llm.teardown()
    with pytest.raises(RuntimeError, match="FakeLLM is closed; create a new one"):
        llm.generate(_rows("a"))


def test_context_manager_closes(make_llm: Any) -> None:
    with make_llm(num_threads=2) as llm:
        assert llm.generate(_rows("a")).result(timeout=10) == [_expected("a", 1)]
        assert _generate_threads()
    assert _generate_threads() == []
    with pytest.raises(RuntimeError, match="closed"):
        llm.generate(_rows("a"))


@pytest.mark.timeout(60)
def test_open_threaded_llm_does_not_block_interpreter_exit() -> None:
    code = (
        "from distilabel_llm.testing import FakeLLM\n"
        "from distilabel_llm.tasks import TextGenerationTask\n"
        "llm = FakeLLM(TextGenerationTask(), num_threads=2, latency=0.05)\n"
        "future = llm.generate([{'input': str(i)} for i in range(4)])\n"
        "future.add_done_callback(lambda f: print('rows', len(f.result()), flush=True))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "rows 4"
    assert done.stderr == ""


def test_validate_prompts_rejects_non_dict_rows_like_generate(make_llm: Any) -> None:
    llm = make_llm()
    with pytest.raises(TypeError, match=r"row 1 is a str: 'b'"):
        llm.validate_prompts([{"input": "a"}, "b"])


@pytest.mark.parametrize("num_threads", [None, 2])
def test_a_raising_progress_callback_never_fails_generation(
    make_llm: Any, num_threads: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(advance: int) -> None:
        raise RuntimeError("display gone")

    llm = make_llm(num_threads=num_threads)
    result = llm.generate(_rows("a", "b"), progress_callback_func=broken)
    rows = result.result(timeout=10) if num_threads else result
    assert len(rows) == 2
    assert "raised when called with advance=" in caplog.text


def test_legacy_default_format_argument_of_generate_prompts(make_llm: Any) -> None:
    llm = make_llm()
    rows = [{"input": "hi"}]
    assert llm._generate_prompts(rows, default_format="openai")[0][1] == {
        "role": "user",
        "content": "hi",
    }
    chosen = make_llm(prompt_format="chatml")
    assert chosen._generate_prompts(rows, default_format="openai")[0].startswith("<|im_start|>")
    # `validate_prompts` takes legacy's `default_format` too.
    assert llm.validate_prompts(rows, default_format="openai")[0][1]["content"] == "hi"
    assert isinstance(llm.validate_prompts(rows)[0], str)
