"""Each task's prompts, its parsing of well-formed and malformed outputs, and `Task` helpers."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from distilabel_llm.errors import DistilabelLLMError, OutputParsingError
from distilabel_llm.tasks import (
    EvolComplexityTask,
    EvolInstructTask,
    EvolQualityTask,
    JudgeLMTask,
    Prompt,
    SelfInstructTask,
    Task,
    TextGenerationTask,
    UltraFeedbackTask,
)

GENERATIONS = ["Paris is the capital.", "It is Lyon."]


def test_task_is_abstract() -> None:
    with pytest.raises(TypeError):
        Task()  # type: ignore[abstract]


def test_output_parsing_error_is_a_value_error() -> None:
    assert issubclass(OutputParsingError, ValueError)
    assert issubclass(OutputParsingError, DistilabelLLMError)


# TextGenerationTask


def test_text_generation_prompt_and_parse() -> None:
    task = TextGenerationTask(system_prompt="Be brief.")
    assert task.input_args_names == ["input"]
    assert task.output_args_names == ["generations"]
    prompt = task.generate_prompt(input="Hi there")
    assert prompt == Prompt(system_prompt="Be brief.", formatted_prompt="Hi there")
    assert task.parse_output("Hello!") == {"generations": "Hello!"}
    assert task.parse_output("") == {"generations": ""}


def test_text_generation_has_a_default_system_prompt_and_ignores_extra_keys() -> None:
    task = TextGenerationTask()
    assert task.system_prompt.strip()
    prompt = task.generate_prompt(input="q", id=7, other="x")
    assert prompt.formatted_prompt == "q"
    assert prompt.system_prompt == task.system_prompt


# SelfInstructTask


def test_self_instruct_prompt_is_configurable() -> None:
    task = SelfInstructTask(application_description="A cooking assistant.", num_instructions=3)
    assert task.input_args_names == ["input"]
    assert task.output_args_names == ["instructions"]
    prompt = task.generate_prompt(input="pasta")
    assert isinstance(prompt, Prompt)
    assert prompt.system_prompt == task.system_prompt
    assert "Write 3 different instructions" in prompt.formatted_prompt
    assert "A cooking assistant." in prompt.formatted_prompt
    assert "pasta" in prompt.formatted_prompt
    assert "one instruction per line" in prompt.formatted_prompt


def test_self_instruct_defaults() -> None:
    prompt = SelfInstructTask().generate_prompt(input="maths")
    assert "Write 5 different instructions" in prompt.formatted_prompt


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Boil pasta.\nMake a sauce.", ["Boil pasta.", "Make a sauce."]),
        (
            "1. Boil pasta.\n2) Make a sauce.\n\n3: Serve.",
            ["Boil pasta.", "Make a sauce.", "Serve."],
        ),
        (
            "- Boil pasta.\n* Make a sauce.\n\u2022 Serve.\n",
            ["Boil pasta.", "Make a sauce.", "Serve."],
        ),
        ("  Only one  \n\n", ["Only one"]),
    ],
)
def test_self_instruct_parses_one_instruction_per_line(output: str, expected: List[str]) -> None:
    assert SelfInstructTask().parse_output(output) == {"instructions": expected}


@pytest.mark.parametrize("output", ["", "   \n\n  ", "1.\n2.\n-"])
def test_self_instruct_rejects_output_without_instructions(output: str) -> None:
    with pytest.raises(OutputParsingError, match="no instruction"):
        SelfInstructTask().parse_output(output)


# Evol-Instruct, Evol-Complexity, Evol-Quality


def test_evol_prompts_name_the_method_in_words_and_keep_the_system_turn() -> None:
    task = EvolComplexityTask(evolution="reasoning")
    prompt = task.generate_prompt(input="Sort a list.")
    assert prompt.system_prompt == task.system_prompt
    assert "Sort a list." in prompt.formatted_prompt
    assert EvolComplexityTask.evolution_methods["reasoning"] in prompt.formatted_prompt
    assert "rewritten instruction only" in prompt.formatted_prompt


def test_evol_templates_get_the_method_by_name_and_in_words() -> None:
    # A template rendering legacy's wording branches on the method's name.
    instruct = EvolInstructTask(template="{evolution_method}|{method}|{input}")
    text = instruct.generate_prompt(input="Sort a list.", evolution_method="breadth")
    assert text.formatted_prompt == (
        f"breadth|{EvolInstructTask.evolution_methods['breadth']}|Sort a list."
    )
    quality = EvolQualityTask(template="{evolution_method}: {input} -> {generation}")
    text = quality.generate_prompt(input="q", generation="a", evolution_method="depth")
    assert text.formatted_prompt == "depth: q -> a"


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Sort a list of 10 numbers.", "Sort a list of 10 numbers."),
        ("Rewritten instruction: Sort it twice.", "Sort it twice."),
        ("## Evolved prompt ##\nSort it by hand.", "Sort it by hand."),
    ],
)
def test_evol_instruct_keeps_the_rewrite_without_its_label(output: str, expected: str) -> None:
    assert EvolInstructTask().parse_output(output) == {"instructions": expected}


@pytest.mark.parametrize("output", ["", "Sorry, that cannot be made harder.", "As an AI, no."])
def test_evol_instruct_eliminates_empty_and_refused_rewrites(output: str) -> None:
    with pytest.raises(OutputParsingError, match="no usable instruction"):
        EvolInstructTask().parse_output(output)


# UltraFeedbackTask

CONSTRUCTORS = [
    ("for_helpfulness", "Helpfulness"),
    ("for_honesty", "Honesty"),
    ("for_instruction_following", "Instruction following"),
    ("for_truthfulness", "Truthfulness"),
    ("for_overall_quality", "Overall quality"),
]


@pytest.mark.parametrize(("constructor", "aspect"), CONSTRUCTORS)
def test_ultrafeedback_constructors_need_no_arguments(constructor: str, aspect: str) -> None:
    task = getattr(UltraFeedbackTask, constructor)()
    assert isinstance(task, UltraFeedbackTask)
    assert task.input_args_names == ["input", "generations"]
    assert task.output_args_names == ["rating", "rationale"]
    prompt = task.generate_prompt(input="Capital of France?", generations=GENERATIONS)
    assert isinstance(prompt, Prompt)
    assert prompt.system_prompt == task.system_prompt
    text = prompt.formatted_prompt
    assert f"Aspect to judge: {aspect}" in text
    assert "Instruction: Capital of France?" in text
    assert "<text 1>\nParis is the capital.\n</text 1>" in text
    assert "<text 2>\nIt is Lyon.\n</text 2>" in text
    assert "#### Output for Text 1" in text and "#### Output for Text 2" in text
    assert "#### Output for Text 3" not in text


def test_ultrafeedback_constructors_pass_overrides() -> None:
    task = UltraFeedbackTask.for_honesty(system_prompt="Judge.", ratings=["1: bad", "2: good"])
    prompt = task.generate_prompt(input="q", generations=["a"])
    assert prompt.system_prompt == "Judge."
    assert "1: bad\n2: good" in prompt.formatted_prompt
    assert "Honesty" in prompt.formatted_prompt


def test_ultrafeedback_aspects_differ() -> None:
    descriptions = {getattr(UltraFeedbackTask, name)().task_description for name, _ in CONSTRUCTORS}
    assert len(descriptions) == len(CONSTRUCTORS)


def test_ultrafeedback_parses_one_rating_and_rationale_per_generation() -> None:
    output = (
        "#### Output for Text 1\nRating: 5\nRationale: Correct and clear.\n"
        "#### Output for Text 2\nRating: [2]\nRationale: Wrong city,\nsaid confidently.\n"
    )
    assert UltraFeedbackTask.for_overall_quality().parse_output(output) == {
        "rating": [5.0, 2.0],
        "rationale": ["Correct and clear.", "Wrong city,\nsaid confidently."],
    }


def test_ultrafeedback_accepts_decimal_ratings_and_a_missing_rationale() -> None:
    output = "### Output for Text 1\nRating: 4.5\n"
    assert UltraFeedbackTask().parse_output(output) == {"rating": [4.5], "rationale": [""]}


@pytest.mark.parametrize(
    ("output", "match"),
    [
        ("Text 1 is great: 5/5.", "Output for Text N"),
        ("", "Output for Text N"),
        ("#### Output for Text 1\nRationale: fine\n", "no 'Rating:' for text 1"),
        (
            "#### Output for Text 1\nRating: 3\n#### Output for Text 2\nRating: n/a\n",
            "no 'Rating:' for text 2",
        ),
    ],
)
def test_ultrafeedback_rejects_malformed_output(output: str, match: str) -> None:
    with pytest.raises(OutputParsingError, match=match):
        UltraFeedbackTask().parse_output(output)


# JudgeLMTask


def test_judgelm_prompt() -> None:
    task = JudgeLMTask()
    assert task.input_args_names == ["input", "generations"]
    assert task.output_args_names == ["rating", "rationale"]
    prompt = task.generate_prompt(input="Capital of France?", generations=GENERATIONS)
    assert prompt.system_prompt == task.system_prompt
    text = prompt.formatted_prompt
    assert text.startswith("[Question]\nCapital of France?\n\n")
    assert "[Answer 1]\nParis is the capital.\n[End of Answer 1]" in text
    assert "[Answer 2]\nIt is Lyon.\n[End of Answer 2]" in text
    assert "Rate each of the 2 answers" in text


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("8 6\nBecause ...", {"rating": [8.0, 6.0], "rationale": "Because ..."}),
        ("  7.5, 3 \n\n Fine.\nMore.  ", {"rating": [7.5, 3.0], "rationale": "Fine.\nMore."}),
        ("9", {"rating": [9.0], "rationale": ""}),
    ],
)
def test_judgelm_parses_scores_then_rationale(output: str, expected: Dict[str, Any]) -> None:
    assert JudgeLMTask().parse_output(output) == expected


@pytest.mark.parametrize("output", ["", "Answer 1 is better.\n8 6", "eight six\nwhy"])
def test_judgelm_rejects_malformed_output(output: str) -> None:
    with pytest.raises(OutputParsingError, match="space-separated scores"):
        JudgeLMTask().parse_output(output)


# Task helpers


@pytest.mark.parametrize(
    ("row", "missing"),
    [
        ({"input": "q", "generations": ["a"]}, []),
        ({"input": "q"}, ["generations"]),
        ({"input": None, "generations": ["a"]}, ["input"]),
        ({}, ["input", "generations"]),
    ],
)
def test_missing_input_args(row: Dict[str, Any], missing: List[str]) -> None:
    assert JudgeLMTask().missing_input_args(row) == missing
