"""Legacy distilabel's `tasks.text_generation.mixins` path. Its Argilla export mixin has no
counterpart here: importing it raises `NotAvailableError`, which says what to do instead."""

from distilabel_llm.tasks._not_available import module_getattr

__all__: list[str] = []

__getattr__ = module_getattr(__name__)
