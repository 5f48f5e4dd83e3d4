"""The tasks legacy users rely on, written anew: prompts, parsing of recorded outputs,
templates, saving and loading, legacy's constructor arguments, and the legacy module paths."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any, Dict, List

import pytest

from distilabel_llm.errors import NotAvailableError, OutputParsingError
from distilabel_llm.tasks import (
    ComplexityScorerTask,
    CritiqueTask,
    EvolComplexityTask,
    EvolInstructTask,
    EvolQualityTask,
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
    "generation": "Boil it for 8 minutes.",
    "instructions": ["Say hi.", "Prove Fermat's last theorem."],
    "ref_completion": "Simmer it in water for 7 to 9 minutes.",
}

ALL_TASKS = [
    TextGenerationTask,
    SelfInstructTask,
    EvolInstructTask,
    EvolComplexityTask,
    EvolQualityTask,
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
    # One instruction per generation, as legacy wrote the column, not a list of one.
    assert task.parse_output("#Rewritten Prompt#: Boil an egg in under 5 minutes.") == {
        "instructions": "Boil an egg in under 5 minutes."
    }
    with pytest.raises(OutputParsingError):
        task.parse_output("Sorry, I cannot rewrite that.")
    with pytest.raises(ValueError, match="evolution"):
        EvolInstructTask(evolution="shrink")


def _method_text(task: EvolInstructTask, **fields: Any) -> str:
    seen: Dict[str, Any] = {}

    def record(**values: Any) -> str:
        seen.update(values)
        return ""

    dataclasses.replace(task, template=record).generate_prompt(**fields)
    return seen["evolution_method"]


@pytest.mark.parametrize(
    ("cls", "methods"),
    [
        (EvolInstructTask, {"breadth", "constraints", "deepen", "concretizing", "reasoning"}),
        (EvolComplexityTask, {"constraints", "deepen", "concretizing", "reasoning"}),
        (EvolQualityTask, {"helpfulness", "relevance", "depth", "creativity", "details"}),
    ],
)
def test_evol_tasks_take_legacys_per_prompt_evolution_method(cls: Any, methods: set) -> None:
    # Legacy chose the method per prompt (`evolution_method`, also a row's column) and drew
    # one at random without it; its names are the methods' names here.
    task = cls()
    fields = {name: ROW[name] for name in task.input_args_names}
    assert set(cls.evolution_methods) == methods
    for method in methods:
        assert _method_text(task, **fields, evolution_method=method) == method
        assert (
            cls.evolution_methods[method]
            in task.generate_prompt(**fields, evolution_method=method).formatted_prompt
        )
    drawn = {_method_text(task, **fields) for _ in range(200)}
    assert drawn == methods
    assert _method_text(cls(evolution=sorted(methods)[0]), **fields) == sorted(methods)[0]
    with pytest.raises(ValueError, match="no evolution method 'fake'"):
        task.generate_prompt(**fields, evolution_method="fake")


def test_evol_complexity_is_evol_instruct_without_breadth() -> None:
    task = EvolComplexityTask()
    assert isinstance(task, EvolInstructTask) and isinstance(task, TextGenerationTask)
    assert (task.input_args_names, task.output_args_names) == (["input"], ["instructions"])
    with pytest.raises(ValueError, match="no evolution method 'breadth'"):
        task.generate_prompt(input="Hi", evolution_method="breadth")
    with pytest.raises(ValueError, match="no evolution method 'breadth'"):
        EvolComplexityTask(evolution="breadth")


def test_evol_quality_rewrites_a_response_into_generations() -> None:
    task = EvolQualityTask()
    assert (task.input_args_names, task.output_args_names) == (
        ["input", "generation"],
        ["generations"],
    )
    text = task.generate_prompt(
        input="How do I boil an egg?", generation="Boil it.", evolution_method="details"
    ).formatted_prompt
    assert "How do I boil an egg?" in text and "Boil it." in text
    assert task.parse_output("Rewritten response: Simmer it for 8 minutes.") == {
        "generations": "Simmer it for 8 minutes."
    }
    for eliminated in ("", "  ", "Sorry, I can't improve this response."):
        with pytest.raises(OutputParsingError, match="no usable response"):
            task.parse_output(eliminated)


@pytest.mark.parametrize("cls", [SelfInstructTask, EvolInstructTask, EvolComplexityTask])
def test_generation_tasks_take_legacys_principles(cls: Any) -> None:
    # Legacy's instruction tasks were text generation tasks, with its principles arguments.
    task = cls(
        principles={"honesty": ["Say when you are unsure."]},
        principles_distribution={"honesty": 1.0},
    )
    assert isinstance(task, TextGenerationTask)
    prompt = task.generate_prompt(**{name: ROW[name] for name in task.input_args_names})
    assert prompt.system_prompt.endswith("Say when you are unsure.")
    assert cls().generate_prompt(input="Hi").system_prompt == cls().system_prompt


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
    # Legacy's quality scorer asked for "[Response N] Score:" lines; they read too.
    assert quality.parse_output("[Response 1] Score: 2\n[Response 2] Score: 3") == {
        "rating": [2.0, 3.0]
    }
    assert (complexity.input_args_names, complexity.output_args_names) == (
        ["instructions"],
        ["rating"],
    )
    assert (quality.input_args_names, quality.output_args_names) == (
        ["input", "generations"],
        ["rating"],
    )


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


def test_prometheus_reads_critique_and_result_for_each_answer() -> None:
    task = PrometheusTask()
    text = _prompt_text(task)
    assert ROW["ref_completion"] in text and "Score 5:" in text and "[RESULT]" in text
    output = "Answer 1: Matches the reference. [RESULT] 5\nAnswer 2: Unsafe advice. [RESULT] 1"
    # Legacy's column names: a critique task writes `critique` and `score`.
    assert task.output_args_names == ["critique", "score"] and isinstance(task, CritiqueTask)
    assert task.parse_output(output) == {
        "critique": ["Matches the reference.", "Unsafe advice."],
        "score": [5.0, 1.0],
    }
    single = task.generate_prompt(
        input="q", generation="a single answer", ref_completion="ref"
    ).formatted_prompt
    assert "a single answer" in single
    assert task.missing_input_args({"input": "q", "generation": "a", "ref_completion": "r"}) == []
    with pytest.raises(OutputParsingError, match="RESULT"):
        task.parse_output("Good answer.")


def test_prometheus_is_built_as_legacy_builds_it() -> None:
    # Legacy required both arguments, and its examples grade on a scale from 0.
    task = PrometheusTask(
        scoring_criteria="Is the advice safe and correct?",
        score_descriptions={0: "unsafe", 1: "risky", 2: "fine", 3: "good", 4: "ideal"},
    )
    text = _prompt_text(task)
    assert "Is the advice safe and correct?" in text and "Score 0: unsafe" in text
    assert "from 0 to 4" in text and "(a score of 4)" in text
    with pytest.raises(ValueError, match="at least one score"):
        PrometheusTask(score_descriptions={})


def test_ultrafeedback_takes_legacys_rating_dicts() -> None:
    from distilabel_llm.tasks.preference.ultrafeedback import Rating

    scale = [Rating(value=1, description="Off topic."), Rating(value=2, description="On topic.")]
    task = UltraFeedbackTask.for_helpfulness(ratings=scale, output_format="json")
    assert task.ratings == ["1: Off topic.", "2: On topic."]
    assert "2: On topic." in _prompt_text(task)
    assert task.structured_output is not None
    rating = task.structured_output["properties"]["ratings"]["items"]["properties"]["rating"]
    assert rating["enum"] == [1, 2]


# Each task built as a legacy script builds it (some with fields of ours too): each must save
# and load back equal, and prompt alike after loading.
LEGACY_BUILT = [
    TextGenerationTask(principles_distribution="balanced"),
    SelfInstructTask(application_description="A cooking assistant.", num_instructions=3),
    EvolInstructTask(principles_distribution={"honesty": 1.0}),
    EvolComplexityTask(evolution="deepen"),
    EvolQualityTask(evolution="details", system_prompt=""),
    UltraFeedbackTask.for_instruction_following(),
    JudgeLMTask(output_format="json"),
    UltraJudgeTask(areas=["Clarity", "Relevance"]),
    ComplexityScorerTask(system_prompt=""),
    QualityScorerTask(template="{input}\n{items}"),
    CritiqueTask(),
    UltraCMTask(),
    PrometheusTask(
        scoring_criteria="Overall quality of the answers.",
        score_descriptions={0: "false", 1: "partly false", 2: "average", 3: "true"},
    ),
]


def test_every_task_class_is_built_as_legacy_builds_it() -> None:
    assert {type(task) for task in LEGACY_BUILT} == set(ALL_TASKS)


@pytest.mark.parametrize("task", LEGACY_BUILT, ids=lambda task: type(task).__name__)
def test_every_task_round_trips_through_save_and_load(task: Task, tmp_path: Path) -> None:
    path = tmp_path / "task.json"
    task.save(path)
    loaded = Task.load(path)
    assert loaded == task and type(loaded) is type(task)
    fields = {name: ROW[name] for name in task.input_args_names}
    if isinstance(task, EvolInstructTask):  # else a method is drawn at random per prompt
        fields["evolution_method"] = task.evolution or sorted(task.evolution_methods)[0]
    before, after = task.generate_prompt(**fields), loaded.generate_prompt(**fields)
    assert after.formatted_prompt == before.formatted_prompt
    # A principle, when asked for, is drawn at random per prompt.
    drawn = getattr(task, "principles_distribution", None) is not None
    assert drawn or after.system_prompt == before.system_prompt


# Every module of legacy 0.6's `distilabel/tasks` and the names each defined: each name is
# here at the same path, or raises NotAvailableError, which says what to use instead.
LEGACY_TASK_MODULES: Dict[str, List[str]] = {
    "tasks": ["Task", "Prompt", "TextGenerationTask", "EvolComplexityTask", "EvolQualityTask"],
    "tasks.base": ["Task", "get_template"],
    "tasks.prompt": ["Prompt", "SupportedFormats", "ChatCompletion"],
    "tasks.mixins": ["RatingToArgillaMixin", "TaskProtocol"],
    "tasks.critique": ["CritiqueTask", "PrometheusTask", "UltraCMTask"],
    "tasks.critique.base": ["CritiqueTask", "CritiqueTaskOutput"],
    "tasks.critique.prometheus": ["PrometheusTask"],
    "tasks.critique.ultracm": ["UltraCMTask"],
    "tasks.preference": ["ComplexityScorerTask", "QualityScorerTask", "UltraFeedbackTask"],
    "tasks.preference.base": ["PreferenceTask", "PreferenceTaskNoRationale"],
    "tasks.preference.complexity_scorer": ["ComplexityScorerTask"],
    "tasks.preference.quality_scorer": ["QualityScorerTask"],
    "tasks.preference.judgelm": ["JudgeLMTask", "JudgeLMOutput"],
    "tasks.preference.ultrafeedback": ["UltraFeedbackTask", "Rating", "UltraFeedbackOutput"],
    "tasks.preference.ultrajudge": ["UltraJudgeTask", "Area", "UltraJudgeOutput"],
    "tasks.text_generation": ["TextGenerationTask", "EvolComplexityTask", "EvolQualityTask"],
    "tasks.text_generation.base": ["TextGenerationTask"],
    "tasks.text_generation.evol_instruct": ["EvolInstructTask", "EvolutionMethod"],
    "tasks.text_generation.evol_complexity": ["EvolComplexityTask", "EvolutionMethod"],
    "tasks.text_generation.evol_quality": ["EvolQualityTask", "EvolutionMethod"],
    "tasks.text_generation.mixins": ["InstructTaskMixin"],
    "tasks.text_generation.principles": ["UltraFeedbackPrinciples"],
    "tasks.text_generation.self_instruct": ["SelfInstructTask"],
}
NOT_HERE = {
    "get_template",
    "ChatCompletion",
    "RatingToArgillaMixin",
    "TaskProtocol",
    "CritiqueTaskOutput",
    "JudgeLMOutput",
    "UltraFeedbackOutput",
    "Area",
    "UltraJudgeOutput",
    "InstructTaskMixin",
}


@pytest.mark.parametrize("module", sorted(LEGACY_TASK_MODULES))
def test_every_legacy_task_module_is_here(module: str) -> None:
    imported = importlib.import_module(f"distilabel_llm.{module}")
    for name in LEGACY_TASK_MODULES[module]:
        if name in NOT_HERE:
            with pytest.raises(NotAvailableError, match=r"'Coming from distilabel 0\.x'"):
                getattr(imported, name)
        else:
            assert getattr(imported, name) is not None


def test_preference_tasks_keep_legacys_base_classes() -> None:
    from distilabel_llm.tasks.preference.base import PreferenceTask, PreferenceTaskNoRationale

    for cls in (UltraFeedbackTask, JudgeLMTask, UltraJudgeTask):
        assert issubclass(cls, PreferenceTask)
    for cls in (ComplexityScorerTask, QualityScorerTask):
        assert issubclass(cls, PreferenceTaskNoRationale)
    for cls in (UltraCMTask, PrometheusTask):
        assert issubclass(cls, CritiqueTask)


@pytest.mark.parametrize(
    ("module", "name"),
    [
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
