"""A pydantic model for the structured output tests, importable by child processes."""

from __future__ import annotations

from typing import Literal

import pydantic


class Verdict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")  # no other keys: the JSON stays short

    score: int = pydantic.Field(ge=1, le=10)
    mood: Literal["happy", "sad", "calm"]
