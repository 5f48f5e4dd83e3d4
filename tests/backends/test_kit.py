"""The tiny-model kit: deterministic, cached, race-safe builds that both runtimes load."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from distilabel_llm.testing import tiny_models as kit

PROMPTS = [
    "Hello world",
    "Write a short poem about the sea.",
    "<|user|>\nExplain why the sky is blue.</s>\n<|assistant|>\n",
    "Numbers 1 2 3 and symbols { } # @",
    "Accents and emoji: café 🌊",
]


def _digests(models: kit.TinyModels) -> Dict[str, str]:
    files = [*sorted(models.hf_path.iterdir()), models.gguf_path]
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


@pytest.mark.timeout(60)
def test_build_is_deterministic(tiny_models: kit.TinyModels, tmp_path: Path) -> None:
    rebuilt = kit.ensure_tiny_models(tmp_path)

    assert _digests(rebuilt) == _digests(tiny_models)


@pytest.mark.timeout(60)
def test_concurrent_builders_share_one_result(tmp_path: Path) -> None:
    barrier = threading.Barrier(2)
    results: List[kit.TinyModels] = []

    def build() -> None:
        barrier.wait()
        results.append(kit.ensure_tiny_models(tmp_path))

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 2 and results[0] == results[1]
    assert results[0].gguf_path.is_file() and (results[0].hf_path / "config.json").is_file()
    # The loser's staging directory is gone; only the finished build remains.
    assert [path.name for path in tmp_path.iterdir()] == [results[0].hf_path.parent.name]


def test_cached_models_are_not_rebuilt(tiny_models: kit.TinyModels) -> None:
    before = tiny_models.gguf_path.stat().st_mtime_ns

    again = kit.ensure_tiny_models(tiny_models.hf_path.parent.parent)

    assert again == tiny_models
    assert again.gguf_path.stat().st_mtime_ns == before


def test_a_changed_recipe_builds_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    before = kit._recipe_hash()
    monkeypatch.setitem(kit._RECIPE, "seed", kit._RECIPE["seed"] + 1)

    assert kit._recipe_hash() != before


def test_default_cache_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DISTILABEL_LLM_CACHE", str(tmp_path))
    assert kit.default_cache_dir() == tmp_path

    monkeypatch.delenv("DISTILABEL_LLM_CACHE")
    assert kit.default_cache_dir() == Path.home() / ".cache" / "distilabel_llm" / "tiny-models"


def test_hf_files_load_as_a_chat_model(
    tiny_models: kit.TinyModels, hf_model_and_tokenizer: Tuple[Any, Any]
) -> None:
    model, tokenizer = hf_model_and_tokenizer
    config = json.loads((tiny_models.hf_path / "tokenizer_config.json").read_text())

    # transformers 4 can only load this class name.
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    special = (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token)
    assert special == ("<s>", "</s>", "<pad>")
    assert model.config.vocab_size == len(tokenizer)
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False
    )
    assert rendered == "<s><|user|>\nHi</s>\n<|assistant|>\n"
    assert tokenizer("Hi").input_ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(tokenizer("Accents: café 🌊").input_ids[1:]) == "Accents: café 🌊"


def test_gguf_tokenizes_like_the_hf_tokenizer(
    hf_model_and_tokenizer: Tuple[Any, Any], llama_model: Any
) -> None:
    _, tokenizer = hf_model_and_tokenizer

    for prompt in PROMPTS:
        expected = tokenizer(prompt).input_ids
        assert llama_model.tokenize(prompt.encode(), add_bos=True, special=True) == expected
    assert llama_model.metadata["tokenizer.chat_template"] == tokenizer.chat_template


@pytest.mark.timeout(60)
def test_llama_cpp_greedy_tokens_equal_transformers_greedy_tokens(
    hf_model_and_tokenizer: Tuple[Any, Any], llama_model: Any
) -> None:
    import llama_cpp
    import torch

    model, tokenizer = hf_model_and_tokenizer
    eos = tokenizer.eos_token_id
    lengths = set()
    for prompt in PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.inference_mode():
            generated = model.generate(ids, max_new_tokens=24, do_sample=False, pad_token_id=0)
        expected = generated[0, ids.shape[1] :].tolist()

        tokens: List[int] = []
        for token in llama_model.generate(
            ids[0].tolist(), top_k=1, temp=0.0, repeat_penalty=1.0, reset=True
        ):
            tokens.append(token)
            if llama_cpp.llama_vocab_is_eog(llama_model._model.vocab, token) or len(tokens) == 24:
                break
        assert tokens == expected, prompt
        lengths.add(len(tokens) if tokens[-1] == eos else None)
    # Some outputs end in EOS early and some run to the limit, so both paths were compared.
    assert None in lengths and len(lengths) > 1


@pytest.mark.timeout(60)
def test_outputs_are_printable_text(hf_model_and_tokenizer: Tuple[Any, Any]) -> None:
    import torch

    model, tokenizer = hf_model_and_tokenizer
    ids = tokenizer(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    torch.manual_seed(0)
    with torch.inference_mode():
        generated = model.generate(**ids, max_new_tokens=32, do_sample=True, top_k=0)
    text = tokenizer.batch_decode(generated[:, ids.input_ids.shape[1] :], skip_special_tokens=True)

    never = set(tokenizer.all_special_ids) - {tokenizer.eos_token_id}
    assert not never & set(generated[:, ids.input_ids.shape[1] :].flatten().tolist())
    assert all(char == "\n" or " " <= char <= "~" for char in "".join(text))


@pytest.mark.timeout(60)
def test_importing_testing_imports_no_heavy_library(run_without: Any) -> None:
    done = run_without(
        [],
        """
        import distilabel_llm.testing
        heavy = {"torch", "transformers", "tokenizers", "gguf", "llama_cpp"} & set(sys.modules)
        print(sorted(heavy))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.timeout(60)
def test_missing_kit_extra_raises_a_clear_error(run_without: Any, tmp_path: Path) -> None:
    done = run_without(
        ["gguf"],
        f"""
        from distilabel_llm.errors import MissingExtraError
        from distilabel_llm.testing import ensure_tiny_models
        try:
            ensure_tiny_models({str(tmp_path)!r})
        except MissingExtraError as error:
            print(error)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'distilabel_llm[kit]'" in done.stdout
    assert "gguf" in done.stdout
    # The failed build left nothing half-made behind.
    assert list(tmp_path.iterdir()) == []
