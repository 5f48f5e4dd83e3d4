"""distilabel's LLM classes that have no class of their own here, and what to use instead.

Importing one from `distilabel_llm.llm` raises `NotAvailableError` with this advice rather
than Python's bare "cannot import name".
"""

from __future__ import annotations

from distilabel_llm.errors import NotAvailableError

__all__ = ["NOT_AVAILABLE", "not_available"]

_COMPATIBLE = (
    "point `OpenAILLM(model=..., base_url=..., api_key=...)` at the provider's "
    "OpenAI-compatible chat completions endpoint (most providers and LiteLLM's proxy serve "
    "one), or write an `AsyncLLM` around its own client (the README's 'An API of your own, "
    "asynchronously')"
)

# name -> (what to use instead, the README section that says more)
NOT_AVAILABLE = {
    "vLLM": (
        "the in-process vLLM engine is not wrapped here: serve the model with `vllm serve "
        "<model>` and use `VLLMServerLLM` (pool several servers with `LLMPool`), or run it "
        "with `TransformersLLM`/`LlamaCppLLM` on your GPUs",
        "Coming from distilabel 0.x",
    ),
    "ClientvLLM": ("use `VLLMServerLLM` with the server's URL", "Coming from distilabel 1.x"),
    "VertexAIEndpointLLM": (_COMPATIBLE, "Coming from distilabel 0.x"),
    "AzureOpenAILLM": (
        "use `OpenAILLM(client=openai.AsyncAzureOpenAI(...), model=<deployment>)`",
        "Coming from distilabel 1.x",
    ),
    "MistralLLM": ("use `MistralAILLM`", "Coming from distilabel 1.x"),
    "TogetherLLM": ("use `TogetherInferenceLLM`", "Coming from distilabel 1.x"),
    "MixtureOfAgentsLLM": (
        "an `LLMPool` of the proposing models answers the same prompts; a `Pipeline` "
        "labeller can then judge or merge their answers",
        "Coming from distilabel 1.x",
    ),
    **{
        name: (_COMPATIBLE, "Coming from distilabel 1.x")
        for name in (
            "AnthropicLLM",
            "CohereLLM",
            "GroqLLM",
            "LiteLLM",
            "VertexAILLM",
            "VertexGenerativeModelLLM",
            "VertexEndpointLLM",
        )
    },
}


def not_available(name: str) -> NotAvailableError:
    """The error for `name`, one of `NOT_AVAILABLE`."""
    advice, section = NOT_AVAILABLE[name]
    return NotAvailableError(
        f"distilabel's `{name}` has no class in distilabel_llm: {advice}. See the README's "
        f"'{section}' section."
    )
