"""Legacy distilabel's `pipeline.pipeline`: where its scripts import `Pipeline` and `pipeline`.

The package `distilabel_llm.pipeline` exports the factory function `pipeline`, and importing
this module would rebind that name to the module: the module is made callable as the factory,
so either reads the same.
"""

import sys
import types
from typing import Any

from distilabel_llm.pipeline.core import Pipeline
from distilabel_llm.pipeline.factory import pipeline

__all__ = ["Pipeline", "pipeline"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Pipeline:
        return pipeline(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
