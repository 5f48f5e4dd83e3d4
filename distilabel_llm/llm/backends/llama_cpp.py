"""`LlamaCppLLM`: generation with a GGUF model through `llama-cpp-python`."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple, Union

from distilabel_llm.errors import GenerationSettingsError, MissingExtraError
from distilabel_llm.llm.core.llm import LLM, PromptFormattingFn
from distilabel_llm.llm.core.outputs import LLMOutput, TokenStatistics
from distilabel_llm.llm.core.settings import GenerationSettings
from distilabel_llm.tasks.prompt import ChatMessages, SupportedFormats

try:
    import llama_cpp
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    # The name still imports; using it says what to install.
    llama_cpp = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from distilabel_llm.tasks.base import Task

__all__ = ["LlamaCppLLM"]

DEFAULT_SEED = 1234
# llama.cpp reads a seed as 32 bits and takes 2^32 - 1 (`LLAMA_DEFAULT_SEED`) for "random":
# the seeds it reproduces are 0 .. 2^32 - 2.
_LLAMA_SEEDS = 2**32 - 1
# Our setting names that llama-cpp-python spells otherwise.
_LLAMA_CPP_NAMES = {"max_new_tokens": "max_tokens", "repetition_penalty": "repeat_penalty"}


class LlamaCppLLM(LLM):
    """Generates with a `llama_cpp.Llama` model.

    String prompts use text completion; chat messages (`prompt_format="openai"`) use chat completion
    with the chat template stored in the GGUF file. Generation slot `k` of a row is sampled with
    seed `seed + k`, so outputs are reproducible and do not depend on batching, on the other rows,
    or on how a pool splits the generations (it passes each call's first slot as the call's
    `GenerationSettings.offsets`); llama.cpp takes seeds below 2^32 - 1, so a larger `seed + k` is
    hashed into that range (`llama_seed`). A temperature of 0 decodes greedily, once per row. Calls
    into the model are serialised, since a `Llama` is not thread-safe.

    Args:
        model: the loaded model, e.g. from `llama_cpp.Llama(model_path=...)`, or the path of a
            GGUF file: then it loads on first use or `load()`, and again after `unload()`.
        task: the task that builds prompts and parses outputs; `TextGenerationTask` if None.
        max_new_tokens, temperature, top_p, top_k, seed: shortcuts for the default
            `generation_kwargs` of the same names.
        repeat_penalty: shortcut for `repetition_penalty` (1.0 for none).
        num_threads: run each row on a pool of this many threads and return futures.
        prompt_format: render `Prompt`s in this format.
        prompt_formatting_fn: render `Prompt`s with this function; wins over `prompt_format`.
        generation_kwargs: default settings, over the shortcuts; see
            `supported_generation_kwargs`.
        n_ctx, n_threads, n_gpu_layers, model_kwargs: how to load a model given as a path; see
            `from_path`.
    """

    supported_generation_kwargs = (
        "max_new_tokens",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "repetition_penalty",
        "frequency_penalty",
        "presence_penalty",
        "stop",
        "seed",
        "structured_output",
    )

    def __init__(
        self,
        model: Union[llama_cpp.Llama, str, Path],
        task: Optional[Task] = None,
        max_new_tokens: int = 128,
        temperature: float = 0.8,
        top_p: float = 0.95,
        top_k: int = 40,
        repeat_penalty: float = 1.1,
        seed: int = DEFAULT_SEED,
        num_threads: Optional[int] = None,
        prompt_format: Optional[SupportedFormats] = None,
        prompt_formatting_fn: Optional[PromptFormattingFn] = None,
        generation_kwargs: Optional[Dict[str, Any]] = None,
        n_ctx: int = 2048,
        n_threads: Optional[int] = None,
        n_gpu_layers: int = 0,
        model_kwargs: Optional[Dict[str, Any]] = None,
    ) -> None:
        _require_extra()
        self._source: Optional[Dict[str, Any]] = None
        if isinstance(model, (str, Path)):
            if not Path(model).is_file():
                raise FileNotFoundError(f"No GGUF file at {str(model)!r}.")
            self._source = {
                "model_path": str(model),
                "n_ctx": n_ctx,
                "n_threads": n_threads,
                "n_gpu_layers": n_gpu_layers,
                "verbose": False,
                **(model_kwargs or {}),
            }
        elif not isinstance(model, llama_cpp.Llama):
            raise TypeError(
                f"`model` must be a llama_cpp.Llama or the path of a GGUF file, not "
                f"{type(model).__name__}."
            )
        self._grammars: Dict[str, Any] = {}  # compiled structured outputs, by spec
        shortcuts = {
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
            "repetition_penalty": repeat_penalty,
            "seed": seed,
        }
        super().__init__(
            task,
            num_threads=num_threads,
            prompt_format=prompt_format,
            prompt_formatting_fn=prompt_formatting_fn,
            generation_kwargs={**shortcuts, **(generation_kwargs or {})},
        )
        self.model: Any = None
        self._model_lock = threading.Lock()
        self._name = self._source["model_path"] if self._source else model.model_path
        if self._source is None:
            self._use(model)
            self._loaded = True

    @classmethod
    def from_path(
        cls,
        path: Union[str, Path],
        task: Task,
        n_ctx: int = 2048,
        n_threads: Optional[int] = None,
        n_gpu_layers: int = 0,
        model_kwargs: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> LlamaCppLLM:
        """Loads the GGUF file at `path`.

        Args:
            path: the GGUF file.
            task: the task that builds prompts and parses outputs.
            n_ctx: context length in tokens (prompt and output together).
            n_threads: CPU threads llama.cpp uses; its default if None.
            n_gpu_layers: layers to offload to the GPU; -1 for all.
            model_kwargs: further arguments for `llama_cpp.Llama`.
            **kwargs: arguments of `LlamaCppLLM` itself (`max_new_tokens`, `seed`, ...).
        """
        llm = cls(
            path,
            task,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            model_kwargs=model_kwargs,
            **kwargs,
        )
        llm.load()
        return llm

    @property
    def model_name(self) -> str:
        """The path of the GGUF file."""
        return self._name

    @property
    def uses_gpu(self) -> bool:
        """Whether layers are offloaded to a GPU (`n_gpu_layers`) and this build can."""
        if self.model is None:
            layers = (self._source or {}).get("n_gpu_layers", 0)
        else:
            layers = getattr(getattr(self.model, "model_params", None), "n_gpu_layers", 0)
        return bool(layers) and bool(llama_cpp.llama_supports_gpu_offload())

    @property
    def max_new_tokens(self) -> int:
        """The default `max_new_tokens`."""
        return int(self.generation_kwargs["max_new_tokens"])

    @property
    def temperature(self) -> float:
        """The default `temperature`."""
        return float(self.generation_kwargs["temperature"])

    @property
    def seed(self) -> int:
        """The default base `seed`."""
        return int(self.generation_kwargs["seed"])

    def _generate(
        self,
        inputs: List[Dict[str, Any]],
        num_generations: int = 1,
        generation_kwargs: Optional[GenerationSettings] = None,
    ) -> List[List[LLMOutput]]:
        settings = self._settings(generation_kwargs)
        offsets = settings.row_offsets(len(inputs))
        structured = settings.structured
        sampling = {
            _LLAMA_CPP_NAMES.get(name, name): value
            for name, value in settings.items()
            if name != "seed"
        }
        if structured is not None:
            sampling["grammar"] = self._grammar(structured)
        seed = settings.get("seed", DEFAULT_SEED)
        rows: List[List[LLMOutput]] = []
        # Greedy decoding gives identical outputs, so each row is generated once.
        distinct = num_generations if sampling.get("temperature", 0.8) > 0 else 1
        for prompt, offset in zip(self._generate_prompts(inputs), offsets):
            outputs = [
                self._generate_one(
                    prompt, {**sampling, "seed": llama_seed(seed + offset + k)}, settings
                )
                for k in range(distinct)
            ]
            rows.append([outputs[k % distinct] for k in range(num_generations)])
        return rows

    def __rich_repr__(self) -> Iterator[Tuple[str, Any]]:
        yield from super().__rich_repr__()
        yield "generation_kwargs", self.generation_kwargs

    # Internals.

    def _check_settings(self, settings: GenerationSettings) -> None:
        """A structured output is compiled to a llama.cpp grammar now, so that one it cannot
        take fails before any work."""
        if settings.structured is not None:
            self._grammar(settings.structured)

    def _grammar(self, spec: Dict[str, Any]) -> Any:
        """llama.cpp's grammar for a structured output (its JSON schema to GBNF conversion, or
        an alternation of the choices), compiled once per spec."""
        key = json.dumps({k: v for k, v in spec.items() if k != "model"}, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is not None:
            return grammar
        if "regex" in spec:
            raise GenerationSettingsError(
                "llama.cpp's grammars take a JSON schema or a list of choices, not a regular "
                "expression; for one use TransformersLLM or an OpenAI-compatible server."
            )
        try:
            if "json_schema" in spec:
                schema = json.dumps(_bounded_integers_as_enums(spec["json_schema"]))
                gbnf = llama_cpp.llama_grammar.json_schema_to_gbnf(schema)
                # This converter lets control characters into strings, which JSON forbids
                # (llama.cpp's own later excluded them); its grammar is otherwise kept as is.
                gbnf = gbnf.replace(r'char ::= [^"\\]', r'char ::= [^"\\\x7F\x00-\x1F]', 1)
                grammar = llama_cpp.LlamaGrammar.from_string(_compact_json(gbnf), verbose=False)
            else:
                alternatives = " | ".join(json.dumps(choice) for choice in spec["choice"])
                grammar = llama_cpp.LlamaGrammar.from_string(
                    f"root ::= {alternatives}", verbose=False
                )
        except Exception as error:
            raise GenerationSettingsError(
                f"llama.cpp cannot compile the structured output into a grammar: {error}"
            ) from error
        self._grammars[key] = grammar
        return grammar

    def _generate_one(
        self,
        prompt: Union[str, ChatMessages],
        sampling: Dict[str, Any],
        settings: Optional[GenerationSettings] = None,
    ) -> LLMOutput:
        with self._model_lock:
            if isinstance(prompt, str):
                response = self.model.create_completion(self._tokenize(prompt), **sampling)
                text = response["choices"][0]["text"]
            else:
                response = self.model.create_chat_completion(messages=prompt, **sampling)
                text = response["choices"][0]["message"]["content"]
        usage = response.get("usage") or {}
        statistics = None
        if "prompt_tokens" in usage:
            statistics = TokenStatistics(
                input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"]
            )
        return self._output(prompt, text, statistics, settings=settings)

    def _load(self) -> None:
        if self.model is not None:
            return
        if self._source is None:
            raise self._cannot_reload("the GGUF file's path")
        self._use(llama_cpp.Llama(**self._source))

    def _use(self, model: Any) -> None:
        self.model = model
        bos_id = model.token_bos()
        self._bos_text = model.detokenize([bos_id], special=True) if bos_id >= 0 else b""

    def _unload(self) -> None:
        with self._model_lock:
            model, self.model = self.model, None
        # A model this LLM loaded is freed now, not when collected; one it was given may be
        # shared with others, and stays the caller's to close.
        if model is not None and self._source is not None and hasattr(model, "close"):
            model.close()

    def _tokenize(self, prompt: str) -> List[int]:
        """The prompt's tokens, special tokens parsed; no second BOS if it starts with one."""
        text = prompt.encode("utf-8")
        add_bos = not (self._bos_text and text.startswith(self._bos_text))
        return self.model.tokenize(text, add_bos=add_bos, special=True)


def llama_seed(value: int) -> int:
    """The llama.cpp seed for the slot seed `value` (any int >= 0), one it reproduces.

    `value` itself below 2^32 - 1; above, where llama.cpp would keep only the low 32 bits (2^32
    sampling as 0) or read 2^32 - 1 as "random", a stable hash of it into 0 .. 2^32 - 2, so that
    distinct seeds stay distinct but for a 2^-32 chance.
    """
    if value < _LLAMA_SEEDS:
        return value
    digest = hashlib.blake2b(str(value).encode("ascii"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _LLAMA_SEEDS


def _require_extra() -> None:
    if llama_cpp is None:
        raise MissingExtraError("llama-cpp-python", "llama-cpp")


# In the converter's grammar, a "," or ":" token with the optional whitespace it may be followed
# by; an opening quote comes after a space, a "(" or a "|", or starts the rule.
_SEPARATOR = re.compile(r'(?<![^\s(|])"([,:])" space\b')
_SPACE_RULE = re.compile(r"^space ::= .*$", re.MULTILINE)


def _compact_json(gbnf: str) -> str:
    """The converter's JSON grammar with whitespace as `json.dumps` writes it: one space after
    each "," and ":", none elsewhere. The converter allows optional whitespace after every
    token, which a model fills at random (and newer converters allow newlines and indents)."""
    gbnf = _SEPARATOR.sub(r'"\1 "', gbnf)
    return _SPACE_RULE.sub('space ::= ""', gbnf, count=1)


# An integer range up to this wide becomes an enum for llama-cpp-python's schema converter.
_MAX_ENUM_RANGE = 1000


def _bounded_integers_as_enums(schema: Any) -> Any:
    """`schema` with each integer bounded on both sides (`minimum`, `maximum`) written as an
    `enum` of its values: llama-cpp-python's JSON-schema-to-grammar converter ignores the
    bounds, but keeps enums. Keywords it ignores otherwise are caught when outputs are
    validated (their outputs get an `error`)."""
    if isinstance(schema, list):
        return [_bounded_integers_as_enums(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    low, high = schema.get("minimum"), schema.get("maximum")
    if (
        schema.get("type") == "integer"
        and isinstance(low, int)
        and isinstance(high, int)
        and 0 <= high - low <= _MAX_ENUM_RANGE
        and "enum" not in schema
    ):
        kept = {k: v for k, v in schema.items() if k not in ("type", "minimum", "maximum")}
        return {**kept, "enum": list(range(low, high + 1))}
    return {key: _bounded_integers_as_enums(value) for key, value in schema.items()}
