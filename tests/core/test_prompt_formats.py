"""`Prompt.format_as`: every supported format, rendered exactly."""

from __future__ import annotations

from typing import get_args

import pytest

from distilabel_llm.tasks import Prompt, SupportedFormats

PROMPT = Prompt(system_prompt="Be brief.", formatted_prompt="What is 2+2?")

EXPECTED = {
    "default": "Be brief.\nWhat is 2+2?",
    "openai": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
    ],
    "llama2": "<s>[INST] <<SYS>>\nBe brief.<</SYS>>\n\nWhat is 2+2? [/INST]",
    "chatml": (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    "zephyr": "<|system|>\nBe brief.</s>\n<|user|>\nWhat is 2+2?</s>\n<|assistant|>\n",
    "notus": "<|system|>\nBe brief.</s>\n<|user|>\nWhat is 2+2?</s>\n<|assistant|>\n",
}


def test_supported_formats_are_exactly_these() -> None:
    assert set(get_args(SupportedFormats)) == set(EXPECTED)


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_format_as(fmt: str) -> None:
    assert PROMPT.format_as(fmt) == EXPECTED[fmt]


def test_notus_is_an_alias_of_zephyr() -> None:
    assert PROMPT.format_as("notus") == PROMPT.format_as("zephyr")


def test_empty_system_prompt_keeps_the_template() -> None:
    assert Prompt("", "hi").format_as("chatml") == (
        "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("fmt", ["mistral", "", "ChatML", None])
def test_unknown_format_names_the_supported_ones(fmt: object) -> None:
    with pytest.raises(ValueError) as raised:
        PROMPT.format_as(fmt)  # type: ignore[arg-type]
    message = str(raised.value)
    assert repr(fmt) in message
    for name in EXPECTED:
        assert repr(name) in message
