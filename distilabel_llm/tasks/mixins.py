"""Legacy distilabel's `tasks.mixins` path. Its Argilla export mixins have no counterpart
here: importing one raises `NotAvailableError`, which says what to do instead."""

from distilabel_llm.tasks._not_available import module_getattr

__all__: list[str] = []

__getattr__ = module_getattr(__name__)
