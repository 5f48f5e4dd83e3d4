"""LLMs whose model lives elsewhere: `RemoteLLM`, and its transports `ProcessLLM` and `RayLLM`."""

from distilabel_llm.llm.members.process import ProcessLLM
from distilabel_llm.llm.members.ray import RayLLM
from distilabel_llm.llm.members.remote import RemoteLLM

__all__ = [
    "ProcessLLM",
    "RayLLM",
    "RemoteLLM",
]
