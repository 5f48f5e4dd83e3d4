"""distilabel_llm: LLM text generation at scale on local hardware and APIs.

The top level exports the core: the `LLM` base, its output type, the tasks and prompt
formats, and `when_all_complete`. Process isolation, pools and backends live in
`distilabel_llm.llm`; optional backends import their heavy dependencies only when used.
"""

from distilabel_llm.llm.core.llm import LLM
from distilabel_llm.llm.core.outputs import LLMOutput
from distilabel_llm.tasks.base import Task
from distilabel_llm.tasks.prompt import Prompt
from distilabel_llm.tasks.text_generation import TextGenerationTask
from distilabel_llm.utils.future_tools import when_all_complete

__version__ = "0.1.0"

__all__ = [
    "LLM",
    "LLMOutput",
    "Prompt",
    "Task",
    "TextGenerationTask",
    "__version__",
    "when_all_complete",
]
