"""Provider presets of `OpenAILLM`, each against our fault server standing in for the provider:
the key comes from the provider's variable, the base URL from the preset unless overridden."""

from __future__ import annotations

from typing import Any

import pytest

openai = pytest.importorskip("openai", reason="the `openai` extra is not installed")

from fault_server import FaultServer  # noqa: E402

from distilabel_llm.llm import (  # noqa: E402
    AnyscaleLLM,
    InferenceEndpointsLLM,
    JSONOpenAILLM,
    MistralAILLM,
    OllamaLLM,
    TogetherInferenceLLM,
    VLLMServerLLM,
)
from distilabel_llm.tasks import TextGenerationTask  # noqa: E402

ROWS = [{"input": "hello"}]


@pytest.mark.parametrize(
    ("cls", "variable", "default_url"),
    [
        (AnyscaleLLM, "ANYSCALE_API_KEY", "https://api.endpoints.anyscale.com/v1"),
        (TogetherInferenceLLM, "TOGETHER_API_KEY", "https://api.together.xyz/v1"),
        (MistralAILLM, "MISTRAL_API_KEY", "https://api.mistral.ai/v1"),
        (InferenceEndpointsLLM, "HF_TOKEN", "https://api-inference.huggingface.co/models/"),
    ],
)
def test_keyed_providers_take_their_key_from_their_variable(
    cls: Any, variable: str, default_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ValueError, match=variable):
        cls(TextGenerationTask(), model="m")
    monkeypatch.setenv(variable, "secret")
    with (
        FaultServer(models=["m"], api_key="secret") as server,
        cls(TextGenerationTask(), model="m", base_url=server.url) as llm,
    ):
        assert llm.generate(ROWS)[0][0]["raw_output"] == "echo 0: hello"
    preset = cls(TextGenerationTask(), model="m", validate_model=False)
    assert preset.base_url.startswith(default_url)
    preset.close()


@pytest.mark.parametrize(
    ("cls", "variable", "url_variable"),
    [(OllamaLLM, "OLLAMA_HOST", None), (VLLMServerLLM, "VLLM_BASE_URL", "VLLM_BASE_URL")],
)
def test_local_servers_need_no_key_and_find_their_address(
    cls: Any, variable: str, url_variable: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultServer(models=["m"]) as server:
        address = server.url if url_variable else server.url.removesuffix("/v1")
        monkeypatch.setenv(variable, address)
        with cls(TextGenerationTask(), model="m") as llm:
            assert llm.generate(ROWS)[0][0]["raw_output"] == "echo 0: hello"
            assert llm.base_url.rstrip("/") == server.url


def test_json_mode_is_a_setting_of_the_request() -> None:
    with FaultServer(models=["m"]) as server:
        with JSONOpenAILLM(
            TextGenerationTask(), model="m", base_url=server.url, api_key="k"
        ) as llm:
            llm.generate(ROWS)
        body = server.requests()[0].body
    assert body["response_format"] == {"type": "json_object"}
