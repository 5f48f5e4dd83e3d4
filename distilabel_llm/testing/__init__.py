"""Test and demo helpers: a fake LLM, and (with the `kit` extra) tiny real models built offline.

`ensure_tiny_models` and `TinyModels` are imported on first access, so that importing this
package never imports torch, transformers, tokenizers or gguf.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from distilabel_llm.testing.fake import FakeLLM

if TYPE_CHECKING:
    from distilabel_llm.testing.tiny_models import TinyModels, ensure_tiny_models

_LAZY = {
    "TinyModels": "distilabel_llm.testing.tiny_models",
    "ensure_tiny_models": "distilabel_llm.testing.tiny_models",
}

__all__ = ["FakeLLM", "TinyModels", "ensure_tiny_models"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
