"""Constrained decoding for transformers through llguidance: a structured output compiled into
a grammar, and a logits processor that masks, at every step, the tokens the grammar forbids.

llguidance (the `structured` extra) was chosen over xgrammar, outlines and lm-format-enforcer:
one 3 MB wheel with no dependencies (xgrammar pulls triton, outlines a dozen packages), fast on
a CPU (its token masks are computed in Rust), and JSON schemas, regular expressions and choices
all in one engine. The tokenizer must be a fast (Rust) one, as transformers' usually are.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

from distilabel_llm.errors import GenerationSettingsError, MissingExtraError

__all__ = ["GrammarLogitsProcessor", "compile_grammar", "llg_tokenizer"]

# JSON as `json.dumps` writes it: a model may not pad it with whitespace until it runs out of
# tokens, which a small model otherwise does.
_COMPACT_JSON = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def _llguidance() -> Any:
    try:
        import llguidance
        import llguidance.hf
    except ImportError as error:
        raise MissingExtraError("llguidance", "structured") from error
    return llguidance


def compile_grammar(spec: Dict[str, Any]) -> str:
    """The llguidance grammar of a structured output.

    Raises:
        GenerationSettingsError: with llguidance's message, if it cannot compile it.
        MissingExtraError: if llguidance is not installed.
    """
    llg = _llguidance()
    try:
        if "json_schema" in spec:
            grammar = llg.LLMatcher.grammar_from_json_schema(
                json.dumps(spec["json_schema"]), defaults=_COMPACT_JSON
            )
        elif "regex" in spec:
            grammar = llg.LLMatcher.grammar_from_regex(spec["regex"])
        else:
            grammar = llg.grammar_from("choice", json.dumps(spec["choice"]))
        problem = llg.LLMatcher.validate_grammar(grammar)
    except Exception as error:  # a schema it cannot read at all
        problem = str(error)
    if problem:
        raise GenerationSettingsError(f"llguidance cannot compile the structured output: {problem}")
    return grammar


def llg_tokenizer(tokenizer: Any, vocab_size: int) -> Any:
    """llguidance's view of a transformers fast tokenizer (about a second: build it once)."""
    llg = _llguidance()
    try:
        return llg.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)
    except ValueError as error:
        raise GenerationSettingsError(
            f"Structured output with transformers needs a fast tokenizer: {error}"
        ) from error


class GrammarLogitsProcessor:
    """A transformers logits processor: each sequence of the batch follows the grammar.

    Made for one `generate` call: its first call sees the prompts, each later call the token
    just chosen for every sequence, which that sequence's matcher consumes before masking.

    Args:
        tokenizer: `llg_tokenizer(...)`.
        grammar: `compile_grammar(...)`.
        eos_ids: the end-of-sequence tokens: a sequence that chose one is done.
    """

    def __init__(self, tokenizer: Any, grammar: str, eos_ids: List[int]) -> None:
        self._llg = _llguidance()
        self._tokenizer = tokenizer
        self._grammar = grammar
        self._eos_ids = sorted(set(eos_ids))
        self._matchers: List[Any] = []
        self._done: List[bool] = []
        self._bitmask: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import llguidance.torch as llg_torch

        if not self._matchers:
            self._matchers = [
                self._llg.LLMatcher(self._tokenizer, self._grammar) for _ in range(len(scores))
            ]
            self._done = [False] * len(scores)
            self._bitmask = llg_torch.allocate_token_bitmask(len(scores), scores.shape[1])
        else:
            eos_ids = set(self._eos_ids)
            for index, matcher in enumerate(self._matchers):
                if self._done[index]:
                    continue
                token = int(input_ids[index, -1])
                if token in eos_ids or matcher.is_stopped():
                    self._done[index] = True
                    self._bitmask[index] = -1  # transformers pads it: nothing to constrain
                else:
                    matcher.consume_token(token)
        active = [(matcher, i) for i, matcher in enumerate(self._matchers) if not self._done[i]]
        # One call masks the whole batch, each sequence on a thread of llguidance's own.
        llg_torch.fill_next_token_bitmask_par(_executor(self._llg), active, self._bitmask)
        stuck = ~self._bitmask.any(dim=1)
        if bool(stuck.any()):  # the grammar is done or broken: those sequences end
            for index in stuck.nonzero().flatten().tolist():
                self._bitmask[index] = 0
                for eos in self._eos_ids:
                    bit = 1 << (eos % 32)
                    self._bitmask[index, eos // 32] |= bit - (1 << 32 if bit >= 1 << 31 else 0)
        llg_torch.apply_token_bitmask_inplace(scores, self._bitmask.to(scores.device))
        return scores


_EXECUTOR: Any = None


def _executor(llg: Any) -> Any:
    """llguidance's thread pool, shared by every generation of the process."""
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = llg.LLExecutor()
    return _EXECUTOR
