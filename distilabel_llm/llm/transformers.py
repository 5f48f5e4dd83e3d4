"""`TransformersLLM`: batched generation with a Hugging Face causal language model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple, Union

from distilabel_llm.errors import MissingExtraError
from distilabel_llm.llm.base import LLM, PromptFormattingFn
from distilabel_llm.llm.outputs import LLMOutput, TokenStatistics
from distilabel_llm.tasks.prompt import ChatMessages, Prompt, SupportedFormats
from distilabel_llm.utils.checks import check_positive_int

try:
    import torch
    import transformers
except ImportError as _error:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingExtraError(_error.name or "transformers", "transformers") from _error

if TYPE_CHECKING:
    from distilabel_llm.tasks.base import Task

__all__ = ["TransformersLLM"]


class TransformersLLM(LLM):
    """Generates with a `transformers` causal LM, all rows of a call in one padded batch.

    Prompts are left-padded (decoder-only models continue from the right end);
    `num_generations` uses `num_return_sequences` (greedy decoding generates once and repeats
    it, since its outputs would be identical); prompt tokens are stripped and special tokens
    skipped. Without `prompt_format` or `prompt_formatting_fn`,
    prompts are rendered with the tokenizer's chat template when it has one, else `default`.

    Args:
        model: a causal LM, e.g. from `AutoModelForCausalLM.from_pretrained`.
        tokenizer: its tokenizer; without a pad token, batches are padded with EOS.
        task: the task that builds prompts and parses outputs.
        max_new_tokens: most tokens generated per output.
        do_sample: sample rather than decode greedily; the sampling arguments below only
            apply when it is True.
        temperature: sampling temperature.
        top_k: sample from the `top_k` likeliest tokens.
        top_p: nucleus sampling threshold.
        typical_p: typical sampling threshold.
        num_threads: run each row on a pool of this many threads and return futures.
        prompt_format: render `Prompt`s in this format.
        prompt_formatting_fn: render `Prompt`s with this function; wins over `prompt_format`.
    """

    def __init__(
        self,
        model: transformers.PreTrainedModel,
        tokenizer: transformers.PreTrainedTokenizerBase,
        task: Task,
        max_new_tokens: int = 128,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 50,
        top_p: float = 1.0,
        typical_p: float = 1.0,
        num_threads: Optional[int] = None,
        prompt_format: Optional[SupportedFormats] = None,
        prompt_formatting_fn: Optional[PromptFormattingFn] = None,
    ) -> None:
        super().__init__(
            task,
            num_threads=num_threads,
            prompt_format=prompt_format,
            prompt_formatting_fn=prompt_formatting_fn,
        )
        check_positive_int("max_new_tokens", max_new_tokens)
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.do_sample = do_sample
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.typical_p = typical_p
        self._eos_ids = _eos_token_ids(model, tokenizer)
        # Batches need a pad token; EOS is the usual stand-in when the tokenizer has none.
        pad_id = tokenizer.pad_token_id
        self._pad_id: int = pad_id if pad_id is not None else (self._eos_ids or [0])[0]

    @classmethod
    def from_pretrained(
        cls,
        path: str,
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
        load_kwargs = dict(model_kwargs or {})
        if torch_dtype is not None:
            # transformers 5 renamed the argument; 4 only knows the old name.
            dtype_arg = (
                "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
            )
            load_kwargs[dtype_arg] = torch_dtype
        model = transformers.AutoModelForCausalLM.from_pretrained(path, **load_kwargs)
        if device is not None:
            model = model.to(device)
        model.eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        return cls(model, tokenizer, task, **kwargs)

    @property
    def model_name(self) -> str:
        """The model's `name_or_path`."""
        return self.model.name_or_path

    def _format_default(self, prompt: Prompt) -> Union[str, ChatMessages]:
        if getattr(self.tokenizer, "chat_template", None):
            return self._apply_chat_template(prompt.format_as("openai"))
        return prompt.format_as("default")

    def _generate(
        self, inputs: List[Dict[str, Any]], num_generations: int = 1
    ) -> List[List[LLMOutput]]:
        prompts = self._generate_prompts(inputs)
        input_ids, attention_mask = self._encode([self._as_text(prompt) for prompt in prompts])
        # Greedy decoding gives identical sequences, so generate each once and repeat it.
        sequences_per_prompt = num_generations if self.do_sample else 1
        with torch.inference_mode():
            generated = self.model.generate(
                input_ids=input_ids.to(self.model.device),
                attention_mask=attention_mask.to(self.model.device),
                max_new_tokens=self.max_new_tokens,
                num_return_sequences=sequences_per_prompt,
                pad_token_id=self._pad_id,
                eos_token_id=self._eos_ids or None,
                **self._sampling_kwargs(),
            )
        new_tokens = generated[:, input_ids.shape[1] :].tolist()
        lengths = [self._output_length(tokens) for tokens in new_tokens]
        texts = self.tokenizer.batch_decode(
            [tokens[:length] for tokens, length in zip(new_tokens, lengths)],
            skip_special_tokens=True,
        )
        input_lengths = attention_mask.sum(dim=1).tolist()
        rows: List[List[LLMOutput]] = []
        for row, prompt in enumerate(prompts):
            outputs = []
            for generation in range(num_generations):
                index = row * sequences_per_prompt + generation % sequences_per_prompt
                statistics = TokenStatistics(
                    input_tokens=int(input_lengths[row]), output_tokens=lengths[index]
                )
                outputs.append(self._output(prompt, texts[index], statistics))
            rows.append(outputs)
        return rows

    def __rich_repr__(self) -> Iterator[Tuple[str, Any]]:
        yield from super().__rich_repr__()
        yield "max_new_tokens", self.max_new_tokens
        yield "do_sample", self.do_sample

    # Internals.

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

    def _encode(self, texts: List[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask of `texts`, left-padded to a common length."""
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
        width = max(len(ids) for ids in encoded)
        pad_id = self._pad_id
        input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in encoded])
        attention_mask = torch.tensor(
            [[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded]
        )
        return input_ids, attention_mask

    def _sampling_kwargs(self) -> Dict[str, Any]:
        if not self.do_sample:
            return {"do_sample": False}
        return {
            "do_sample": True,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "typical_p": self.typical_p,
        }

    def _output_length(self, tokens: List[int]) -> int:
        """Generated tokens up to and including the first EOS; the rest is padding."""
        for position, token in enumerate(tokens):
            if token in self._eos_ids:
                return position + 1
        return len(tokens)


def _eos_token_ids(model: Any, tokenizer: Any) -> List[int]:
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    if configured is None:
        return []
    return list(configured) if isinstance(configured, (list, tuple)) else [configured]
