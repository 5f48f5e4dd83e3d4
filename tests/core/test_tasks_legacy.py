"""The tasks legacy users rely on, written anew: prompts, parsing of recorded outputs,
templates, saving and loading, and the legacy module paths."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any, Dict, List

import pytest

from distilabel_llm.errors import OutputParsingError
from distilabel_llm.tasks import (
    ComplexityScorerTask,
    CritiqueTask,
    EvolInstructTask,
    JudgeLMTask,
    PrometheusTask,
    QualityScorerTask,
    SelfInstructTask,
    Task,
    TextGenerationTask,
    UltraCMTask,
    UltraFeedbackTask,
    UltraJudgeTask,
)

ROW: Dict[str, Any] = {
    "input": "How do I boil an egg?",
    "generations": ["Boil it for 8 minutes.", "Put it in the microwave."],
    "instructions": ["Say hi.", "Prove Fermat's last theorem."],
    "ref_completion": "Simmer it in water for 7 to 9 minutes.",
}

ALL_TASKS = [
    TextGenerationTask,
    SelfInstructTask,
    EvolInstructTask,
    UltraFeedbackTask,
    JudgeLMTask,
    UltraJudgeTask,
    ComplexityScorerTask,
    QualityScorerTask,
    CritiqueTask,
    UltraCMTask,
    PrometheusTask,
]


def _prompt_text(task: Task, row: Dict[str, Any] = ROW) -> str:
    fields = {name: row[name] for name in task.input_args_names}
    return task.generate_prompt(**fields).formatted_prompt


@pytest.mark.parametrize("cls", ALL_TASKS)
def test_every_task_takes_a_system_prompt_and_a_template_without_subclassing(cls: Any) -> None:
    task = cls(system_prompt="Be terse.", template="Q: {input_or_first}")
    fields = {name: ROW[name] for name in task.input_args_names}
    with pytest.raises(ValueError, match="not one of its fields"):
        task.generate_prompt(**fields)
    seen: List[Dict[str, Any]] = []

    def legacy_wording(**values: Any) -> str:  # e.g. a legacy Jinja template rendered here
        seen.append(values)
        return "legacy prompt"

    prompt = cls(system_prompt="Be terse.", template=legacy_wording).generate_prompt(**fields)
    assert (
        prompt.system_prompt.startswith("Be terse.") and prompt.formatted_prompt == "legacy prompt"
    )
    assert set(task.input_args_names) - {"ref_completion"} <= set(seen[0]) | {"instructions"}


@pytest.mark.parametrize("cls", ALL_TASKS)
def test_every_task_saves_and_loads(cls: Any, tmp_path: Path) -> None:
    task = cls(system_prompt="Saved.", template="{input}")
    path = tmp_path / "task.json"
    task.save(path)
    assert Task.load(path) == task
    assert Task.from_dict(task.to_dict()) == task
    with pytest.raises(TypeError, match="template"):
        cls(template=lambda **_: "x").to_dict()


def test_loading_something_that_is_not_a_task_is_refused() -> None:
    with pytest.raises(ValueError, match="Not a saved task"):
        Task.from_dict({"task": "os.path:nothing"})
    with pytest.raises(ValueError, match="is not a Task"):
        Task.from_dict({"task": "pathlib:Path"})


def test_principles_steer_the_system_prompt() -> None:
    task = TextGenerationTask(
        principles={"honesty": ["Say when you are unsure."], "helpfulness": ["Be complete."]},
        principles_distribution={"honesty": 1.0, "helpfulness": 0.0},
    )
    prompt = task.generate_prompt(input="Hi")
    assert prompt.system_prompt.endswith("Say when you are unsure.")
    balanced = TextGenerationTask(principles_distribution="balanced")
    assert balanced.generate_prompt(input="Hi").system_prompt != TextGenerationTask().system_prompt
    with pytest.raises(ValueError, match="which `principles` lacks"):
        TextGenerationTask(principles_distribution={"wit": 1.0})


def test_self_instruct_criteria_reach_the_prompt() -> None:
    task = SelfInstructTask(criteria_for_query_generation="Each asks for one checkable fact.")
    assert "Each asks for one checkable fact." in _prompt_text(task)


def test_evol_instruct_methods_and_elimination() -> None:
    task = EvolInstructTask(evolution="constraints")
    assert "constraint" in _prompt_text(task) and ROW["input"] in _prompt_text(task)
    assert task.parse_output("#Rewritten Prompt#: Boil an egg in under 5 minutes.") == {
        "instructions": ["Boil an egg in under 5 minutes."]
    }
    with pytest.raises(OutputParsingError):
        task.parse_output("Sorry, I cannot rewrite that.")
    with pytest.raises(ValueError, match="evolution"):
        EvolInstructTask(evolution="shrink")  # type: ignore[arg-type]


def test_scorers_read_one_score_per_item() -> None:
    complexity = ComplexityScorerTask()
    assert "[2] Prove Fermat's last theorem." in _prompt_text(complexity)
    assert complexity.parse_output("[1] Score: 1\n[2] Score: 6") == {"rating": [1.0, 6.0]}
    quality = QualityScorerTask()
    assert quality.parse_output("Here you go:\n[1] Score: 5\n[2] Score: 2.5") == {
        "rating": [5.0, 2.5]
    }
    with pytest.raises(OutputParsingError, match=r"none for \[1\]"):
        quality.parse_output("[2] Score: 3")


def test_ultrajudge_reads_each_area() -> None:
    output = (
        "#### Scores for Answer 1\n"
        "Practical accuracy: 9 - correct time.\nClarity: 8 - short.\n"
        "Completeness: 6 - no cooling step.\nRelevance: 9 - on topic.\n\n"
        "#### Scores for Answer 2\n"
        "- Practical accuracy: 2/10 - eggs can burst.\n- Clarity: 7 - clear.\n"
        "- Completeness: 3 - no time.\n- Relevance: 8 - on topic.\n"
    )
    parsed = UltraJudgeTask().parse_output(output)
    assert parsed["rating"] == [8.0, 5.0]
    assert parsed["areas"][1]["Practical accuracy"] == {
        "rating": 2.0,
        "rationale": "eggs can burst.",
    }
    with pytest.raises(OutputParsingError, match="Clarity"):
        UltraJudgeTask().parse_output("#### Scores for Answer 1\nPractical accuracy: 3")


@pytest.mark.parametrize("cls", [CritiqueTask, UltraCMTask])
def test_critiques_read_review_and_score(cls: Any) -> None:
    output = (
        "#### Critique of Answer 1\nRight time, but say to cool it.\nOverall score: 8\n"
        "#### Critique of Answer 2\nDangerous: eggs burst in microwaves.\nOverall Score: 2/10"
    )
    assert cls().parse_output(output) == {
        "critique": ["Right time, but say to cool it.", "Dangerous: eggs burst in microwaves."],
        "score": [8.0, 2.0],
    }
    with pytest.raises(OutputParsingError, match="Overall score"):
        cls().parse_output("#### Critique of Answer 1\nGood.")


def test_prometheus_reads_feedback_and_result_for_each_answer() -> None:
    task = PrometheusTask()
    text = _prompt_text(task)
    assert ROW["ref_completion"] in text and "Score 5:" in text and "[RESULT]" in text
    output = "Answer 1: Matches the reference. [RESULT] 5\nAnswer 2: Unsafe advice. [RESULT] 1"
    assert task.parse_output(output) == {
        "feedback": ["Matches the reference.", "Unsafe advice."],
        "score": [5.0, 1.0],
    }
    single = task.generate_prompt(
        input="q", generation="a single answer", ref_completion="ref"
    ).formatted_prompt
    assert "a single answer" in single
    assert task.missing_input_args({"input": "q", "generation": "a", "ref_completion": "r"}) == []
    with pytest.raises(OutputParsingError, match="RESULT"):
        task.parse_output("Good answer.")


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("distilabel_llm.tasks.text_generation.base", "TextGenerationTask"),
        ("distilabel_llm.tasks.text_generation.self_instruct", "SelfInstructTask"),
        ("distilabel_llm.tasks.text_generation.evol_instruct", "EvolInstructTask"),
        ("distilabel_llm.tasks.preference.ultrafeedback", "UltraFeedbackTask"),
        ("distilabel_llm.tasks.preference.judgelm", "JudgeLMTask"),
        ("distilabel_llm.tasks.preference.ultrajudge", "UltraJudgeTask"),
        ("distilabel_llm.tasks.critique.ultracm", "UltraCMTask"),
        ("distilabel_llm.tasks.critique.prometheus", "PrometheusTask"),
        ("distilabel_llm.tasks.prompt", "Prompt"),
        ("distilabel_llm.llm.base", "ProcessLLM"),
        ("distilabel_llm.llm.base", "LLMPool"),
        ("distilabel_llm.llm.utils", "LLMOutput"),
        ("distilabel_llm.utils.futures", "when_all_complete"),
        ("distilabel_llm.pipeline", "pipeline"),
        ("distilabel_llm.dataset", "DatasetCheckpoint"),
    ],
)
def test_legacy_module_paths_import(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is not None


def test_tasks_are_dataclasses_with_a_template_field() -> None:
    for cls in ALL_TASKS:
        assert "template" in {field.name for field in dataclasses.fields(cls)}
