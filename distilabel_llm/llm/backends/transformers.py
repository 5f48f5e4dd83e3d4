"""`TransformersLLM`: batched generation with a Hugging Face causal language model."""

from __future__ import annotations

import gc
import json
import os
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple, Union

from distilabel_llm.errors import MissingExtraError
from distilabel_llm.llm.backends import _continuous_batching as continuous
from distilabel_llm.llm.backends import _static_batching as static
from distilabel_llm.llm.backends._grammar import (
    GrammarLogitsProcessor,
    compile_grammar,
    llg_tokenizer,
)
from distilabel_llm.llm.core.llm import LLM, PromptFormattingFn, logger
from distilabel_llm.llm.core.outputs import LLMOutput, TokenStatistics
from distilabel_llm.llm.core.settings import GenerationSettings
from distilabel_llm.tasks.prompt import ChatMessages, Prompt, SupportedFormats
from distilabel_llm.utils.checks import check_positive_int

try:
    import torch
    import transformers
except ImportError as _error:  # pragma: no cover - exercised in a subprocess by the tests
    # The name still imports (`from distilabel_llm.llm import TransformersLLM` works whatever
    # is installed); using it says what to install.
    torch = transformers = None  # type: ignore[assignment]
    _MISSING: Optional[MissingExtraError] = MissingExtraError(
        _error.name or "transformers", "transformers"
    )
else:
    _MISSING = None

if TYPE_CHECKING:
    from distilabel_llm.tasks.base import Task

__all__ = ["TransformersLLM"]


class TransformersLLM(LLM):
    """Generates with a `transformers` causal LM, the rows of a call in padded batches.

    A call runs in one batch, or with `batch_size`, in batches of at most that many prompts of
    similar length (outputs still in input order): a short prompt then pads to its peers'
    length, not to the longest of the call. Prompts are left-padded (decoder-only models
    continue from the right end); `num_generations` uses `num_return_sequences` (greedy
    decoding generates once and repeats it, since its outputs would be identical); prompt
    tokens are stripped and special tokens skipped. Without `prompt_format` or
    `prompt_formatting_fn`, prompts are rendered with the tokenizer's chat template when it
    has one, else `default`.

    Decoding is greedy unless a `temperature` above 0 is set (as on the other backends) or
    `do_sample=True` (at temperature 1); `do_sample=False` or a temperature of 0 is greedy whatever
    else is set. Sampling draws from torch's global random generator; with a `seed`, each sequence
    draws from a generator of its own, seeded from the seed, its row's prompt and its generation
    slot (its row's first slot, `GenerationSettings.offsets`, plus its index): a row's samples are
    then the same alone or in any batch, through a pool of replicas (which fill different slots) or
    when a job resumes (but for a rare draw that the rounding of a padded batch tips over, see the
    README), and rows with the same prompt get the same samples. `stop` strings end an output and
    are cut from its text, as the other backends do.

    Args:
        model: a causal LM, e.g. from `AutoModelForCausalLM.from_pretrained`, or what
            `from_pretrained` loads (a directory or a Hub model id): then the model and its
            tokenizer load on first use or `load()`, and load again after `unload()`.
        tokenizer: the model's tokenizer (None with a path); without a pad token, batches are
            padded with EOS.
        task: the task that builds prompts and parses outputs; `TextGenerationTask` if None.
        max_new_tokens, do_sample, temperature, top_k, top_p, typical_p: shortcuts for the
            default `generation_kwargs` of the same names; the sampling ones only apply when
            sampling.
        num_threads: run each row on a pool of this many threads and return futures.
        prompt_format: render `Prompt`s in this format.
        prompt_formatting_fn: render `Prompt`s with this function; wins over `prompt_format`.
        generation_kwargs: default settings, over the shortcuts; see
            `supported_generation_kwargs`.
        device, torch_dtype, model_kwargs: how to load a model given as a path; see
            `from_pretrained`.
        batch_size: most prompts per batch; a call with more rows runs in batches grouped by
            prompt length. None: every row of a call in one batch.
        continuous_batching: decode with transformers' continuous batching
            (`model.generate_batch`, transformers 5), `batch_size` sequences at a time, a new
            one starting as soon as one ends, for the same greedy outputs. A call with a
            structured output, `stop` strings, `repetition_penalty` or a seeded sampling runs
            in static batches, and so does every call where the installed transformers lacks
            it (with a warning). Off by default: on a CPU it was slower than static batches.
    """

    supported_generation_kwargs = (
        "max_new_tokens",
        "do_sample",
        "temperature",
        "top_k",
        "top_p",
        "typical_p",
        "repetition_penalty",
        "stop",
        "seed",
        "structured_output",
    )

    def __init__(
        self,
        model: Union[transformers.PreTrainedModel, str, os.PathLike],
        tokenizer: Optional[transformers.PreTrainedTokenizerBase] = None,
        task: Optional[Task] = None,
        max_new_tokens: int = 128,
        do_sample: Optional[bool] = None,
        temperature: Optional[float] = None,
        top_k: int = 50,
        top_p: float = 1.0,
        typical_p: float = 1.0,
        num_threads: Optional[int] = None,
        prompt_format: Optional[SupportedFormats] = None,
        prompt_formatting_fn: Optional[PromptFormattingFn] = None,
        generation_kwargs: Optional[Dict[str, Any]] = None,
        device: Optional[Union[str, int, torch.device]] = None,
        torch_dtype: Optional[Union[str, torch.dtype]] = None,
        model_kwargs: Optional[Dict[str, Any]] = None,
        batch_size: Optional[int] = None,
        continuous_batching: bool = False,
    ) -> None:
        _require_extra()
        if batch_size is not None:
            check_positive_int("batch_size", batch_size)
        self.batch_size = batch_size
        self.continuous_batching = continuous_batching
        if isinstance(model, (str, os.PathLike)):
            model = os.fspath(model)
            self._source: Optional[Dict[str, Any]] = {
                "path": model,
                "device": device,
                "torch_dtype": torch_dtype,
                "model_kwargs": dict(model_kwargs or {}),
            }
        elif tokenizer is None:
            raise TypeError(
                "A loaded `model` needs its `tokenizer`; or pass the model's path as `model` "
                "to load both on first use."
            )
        else:
            self._source = None
        self._grammars: Dict[str, str] = {}  # compiled structured outputs, by spec
        self._llg: Any = None  # llguidance's tokenizer, built on the first structured call
        shortcuts = {
            "max_new_tokens": max_new_tokens,
            "do_sample": do_sample,
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            "typical_p": typical_p,
        }
        shortcuts = {name: value for name, value in shortcuts.items() if value is not None}
        super().__init__(
            task,
            num_threads=num_threads,
            prompt_format=prompt_format,
            prompt_formatting_fn=prompt_formatting_fn,
            generation_kwargs={**shortcuts, **(generation_kwargs or {})},
        )
        self.model: Any = None
        self.tokenizer: Any = None
        self._name = model if isinstance(model, str) else model.name_or_path
        if self._source is None:
            self._use(model, tokenizer)
            self._loaded = True

    @classmethod
    def from_pretrained(
        cls,
        path: Union[str, os.PathLike],
        task: Task,
        device: Optional[Union[str, int, torch.device]] = None,
        torch_dtype: Optional[Union[str, torch.dtype]] = None,
        model_kwargs: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> TransformersLLM:
        """Loads the model and tokenizer at `path` (a directory or a Hub model id).

        Args:
            path: what `from_pretrained` of `AutoModelForCausalLM` and `AutoTokenizer` load.
            task: the task that builds prompts and parses outputs.
            device: where to put the model, e.g. `"cuda:0"`; it stays on the CPU if None.
            torch_dtype: the weights' dtype, a `torch.dtype` or its name (`"bfloat16"`).
            model_kwargs: further arguments for `AutoModelForCausalLM.from_pretrained`.
            **kwargs: arguments of `TransformersLLM` itself (`max_new_tokens`, ...).
        """
        _require_extra()
        llm = cls(
            path,
            None,
            task,
            device=device,
            torch_dtype=torch_dtype,
            model_kwargs=model_kwargs,
            **kwargs,
        )
        llm.load()
        return llm

    @property
    def model_name(self) -> str:
        """The model's `name_or_path` (its path, if given one)."""
        return self._name

    def _format_default(self, prompt: Prompt) -> Union[str, ChatMessages]:
        self.load()  # the tokenizer's chat template decides
        if getattr(self.tokenizer, "chat_template", None):
            return self._apply_chat_template(prompt.format_as("openai"))
        return prompt.format_as("default")

    @property
    def uses_gpu(self) -> bool:
        """Whether the model's weights are (or, not loaded yet, will be) on a GPU."""
        if self.model is not None:
            return bool(self.model.device.type != "cpu")
        device = (self._source or {}).get("device")
        return device is not None and torch.device(device).type != "cpu"

    @property
    def max_new_tokens(self) -> int:
        """The default `max_new_tokens`."""
        return int(self.generation_kwargs["max_new_tokens"])

    @property
    def do_sample(self) -> bool:
        """Whether calls sample by default."""
        return bool(self._sampling_kwargs(self.generation_kwargs)["do_sample"])

    def _generate(
        self,
        inputs: List[Dict[str, Any]],
        num_generations: int = 1,
        generation_kwargs: Optional[GenerationSettings] = None,
    ) -> List[List[LLMOutput]]:
        settings = self._settings(generation_kwargs)
        prompts = self._generate_prompts(inputs)
        texts = [self._as_text(prompt) for prompt in prompts]
        encoded = self._tokenize(texts)
        sampling = self._sampling_kwargs(settings)
        if self._continuous and continuous.suits(settings, sampling, settings.structured):
            new_tokens = continuous.generate_continuously(
                self.model,
                encoded,
                _sequences_per_prompt(sampling, num_generations),
                settings.get("max_new_tokens", 128),
                sampling,
                self._eos_ids,
                self._pad_id,
                self.batch_size,
            )
            paddings = [0] * len(new_tokens)  # none: a sequence leaves as it ends
            return self._outputs(prompts, encoded, new_tokens, paddings, num_generations)
        seeds = self._sequence_seeds(settings, sampling, texts, num_generations)
        rows: List[List[LLMOutput]] = [[] for _ in prompts]
        for group in static.length_groups(encoded, self.batch_size):
            made = self._generate_batch(
                [prompts[i] for i in group],
                [encoded[i] for i in group],
                num_generations,
                settings,
                None if seeds is None else [seed for i in group for seed in seeds[i]],
            )
            for position, outputs in zip(group, made):
                rows[position] = outputs
        return rows

    def _generate_batch(
        self,
        prompts: List[Union[str, ChatMessages]],
        encoded: List[List[int]],
        num_generations: int,
        settings: GenerationSettings,
        seeds: Optional[List[int]] = None,
    ) -> List[List[LLMOutput]]:
        """One padded `model.generate` over `prompts` (token ids `encoded`); with `seeds`, one
        per sequence, each sequence samples from its own generator."""
        sampling = self._sampling_kwargs(settings)
        sequences_per_prompt = _sequences_per_prompt(sampling, num_generations)
        stops = settings.get("stop") or []
        if stops:
            sampling.update(stop_strings=stops, tokenizer=self.tokenizer)
        if settings.structured is not None:
            grammar = self._grammar(settings.structured)
            sampling["logits_processor"] = transformers.LogitsProcessorList(
                [GrammarLogitsProcessor(self._llg_tokenizer(), grammar, self._eos_ids)]
            )
        new_tokens, paddings = static.generate_padded(
            self.model,
            encoded,
            sequences_per_prompt,
            settings.get("max_new_tokens", 128),
            sampling,
            self._eos_ids,
            self._pad_id,
            seeds,
        )
        return self._outputs(
            prompts, encoded, new_tokens, paddings, num_generations, stops, settings
        )

    @staticmethod
    def _sequence_seeds(
        settings: GenerationSettings,
        sampling: Dict[str, Any],
        texts: List[str],
        num_generations: int,
    ) -> Optional[List[List[int]]]:
        """For a seeded sampling, each row's seeds, one per generation slot it fills; None
        otherwise (greedy, or sampling from torch's global generator).

        A sequence's seed comes from the seed, its slot (its row's first slot,
        `GenerationSettings.offsets`, plus its index, so a pool's members fill a row's slots as one
        model would) and its row's prompt (so rows differ), never from its batch: a row's samples
        are the same alone or batched with any others, in any order, in a pool, or when a job
        resumes."""
        if not sampling["do_sample"] or settings.get("seed") is None:
            return None
        seed = settings["seed"]
        return [
            [static.sequence_seed(seed, text, offset + k) for k in range(num_generations)]
            for text, offset in zip(texts, settings.row_offsets(len(texts)))
        ]

    def _outputs(
        self,
        prompts: List[Union[str, ChatMessages]],
        encoded: List[List[int]],
        new_tokens: List[List[int]],
        paddings: List[int],
        num_generations: int,
        stops: Optional[List[str]] = None,
        settings: Optional[GenerationSettings] = None,
    ) -> List[List[LLMOutput]]:
        """Each prompt's outputs from its sequences' new tokens (up to their EOS)."""
        sequences_per_prompt = len(new_tokens) // len(prompts)
        lengths = [len(tokens) for tokens in new_tokens]
        texts = [
            _cut_at_stop(text, stops or [])
            for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        ]
        rows: List[List[LLMOutput]] = []
        for row, prompt in enumerate(prompts):
            outputs = []
            for generation in range(num_generations):
                # Greedy decoding made one sequence per prompt: each generation repeats it.
                index = row * sequences_per_prompt + generation % sequences_per_prompt
                statistics = TokenStatistics(
                    input_tokens=len(encoded[row]),
                    output_tokens=lengths[index],
                    padding_tokens=paddings[index],
                )
                outputs.append(self._output(prompt, texts[index], statistics, settings=settings))
            rows.append(outputs)
        return rows

    def _check_settings(self, settings: GenerationSettings) -> None:
        """A structured output is compiled by llguidance now, so that one it cannot take
        fails before any work."""
        if settings.structured is not None:
            self._grammar(settings.structured)

    def __rich_repr__(self) -> Iterator[Tuple[str, Any]]:
        yield from super().__rich_repr__()
        yield "generation_kwargs", self.generation_kwargs

    def _grammar(self, spec: Dict[str, Any]) -> str:
        key = json.dumps({k: v for k, v in spec.items() if k != "model"}, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = compile_grammar(spec)
        return self._grammars[key]

    def _llg_tokenizer(self) -> Any:
        if self._llg is None:
            vocab = getattr(self.model.config, "vocab_size", None) or len(self.tokenizer)
            self._llg = llg_tokenizer(self.tokenizer, vocab)
        return self._llg

    # Internals.

    def _load(self) -> None:
        if self.model is not None:
            return
        if self._source is None:
            raise self._cannot_reload("the model's path")
        load_kwargs = dict(self._source["model_kwargs"])
        if self._source["torch_dtype"] is not None:
            # transformers 5 renamed the argument; 4 only knows the old name.
            dtype_arg = (
                "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
            )
            load_kwargs[dtype_arg] = self._source["torch_dtype"]
        path = self._source["path"]
        model = transformers.AutoModelForCausalLM.from_pretrained(path, **load_kwargs)
        if self._source["device"] is not None:
            model = model.to(self._source["device"])
        model.eval()
        self._use(model, transformers.AutoTokenizer.from_pretrained(path))

    def _use(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self._eos_ids = _eos_token_ids(model, tokenizer)
        # Batches need a pad token; EOS is the usual stand-in when the tokenizer has none.
        pad_id = tokenizer.pad_token_id
        self._pad_id: int = pad_id if pad_id is not None else (self._eos_ids or [0])[0]
        self._continuous = self.continuous_batching and continuous.available(model)
        if self.continuous_batching and not self._continuous:
            logger.warning(
                "transformers %s has no continuous batching (`generate_batch`, transformers 5); "
                "%s generates in static batches instead.",
                transformers.__version__,
                self._name,
            )

    def _unload(self) -> None:
        on_gpu = self.model is not None and self.model.device.type == "cuda"
        self.model = self.tokenizer = self._llg = None
        gc.collect()
        if on_gpu:
            torch.cuda.empty_cache()

    def _apply_chat_template(self, messages: ChatMessages) -> str:
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )

    def _as_text(self, prompt: Union[str, ChatMessages]) -> str:
        if isinstance(prompt, str):
            return prompt
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(
                f"The tokenizer of {self.model_name} has no chat template, so it cannot render "
                "chat messages; use a string prompt format such as prompt_format='default'."
            )
        return self._apply_chat_template(prompt)

    def _tokenize(self, texts: List[str]) -> List[List[int]]:
        """The token ids of each of `texts`."""
        # Chat templates that write the BOS token themselves must not get a second one.
        bos = self.tokenizer.bos_token
        starts_with_bos = [bool(bos) and text.startswith(bos) for text in texts]
        encoded: List[List[int]] = [[] for _ in texts]
        for has_bos in (False, True):
            positions = [i for i, flag in enumerate(starts_with_bos) if flag == has_bos]
            if positions:
                ids = self.tokenizer(
                    [texts[i] for i in positions], add_special_tokens=not has_bos
                ).input_ids
                for position, token_ids in zip(positions, ids):
                    encoded[position] = token_ids
        return encoded

    def _sampling_kwargs(self, settings: Dict[str, Any]) -> Dict[str, Any]:
        """`model.generate`'s arguments for the settings: sampling when `do_sample` says so,
        or, when it is not set, when a temperature above 0 is; a temperature of 0 is greedy
        (transformers itself refuses it when sampling)."""
        penalty = {}
        if "repetition_penalty" in settings:
            penalty["repetition_penalty"] = settings["repetition_penalty"]
        temperature = settings.get("temperature")
        do_sample = settings.get("do_sample")
        if do_sample is None:
            do_sample = temperature is not None and temperature > 0
        if not do_sample or temperature == 0:
            return {"do_sample": False, **penalty}
        names = ("temperature", "top_k", "top_p", "typical_p")
        return {"do_sample": True, **penalty, **{n: settings[n] for n in names if n in settings}}


def _sequences_per_prompt(sampling: Dict[str, Any], num_generations: int) -> int:
    """Sequences to decode per prompt: greedy decoding gives identical ones, so one."""
    return num_generations if sampling["do_sample"] else 1


def _require_extra() -> None:
    if _MISSING is not None:
        raise _MISSING


def _cut_at_stop(text: str, stops: List[str]) -> str:
    """`text` up to the first stop string in it, which is left out."""
    ends = [text.find(stop) for stop in stops]
    found = [end for end in ends if end >= 0]
    return text[: min(found)] if found else text


def _eos_token_ids(model: Any, tokenizer: Any) -> List[int]:
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    if configured is None:
        return []
    return list(configured) if isinstance(configured, (list, tuple)) else [configured]
