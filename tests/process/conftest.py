"""Fixtures for the process and pool tests: every test must leave no child process behind."""

from __future__ import annotations

import os
from typing import Iterator

import pytest
from process_helpers import children_of
from waiting import wait_until


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    before = set(children_of(os.getpid()))
    yield
    assert wait_until(lambda: not set(children_of(os.getpid())) - before, 10.0), (
        f"child processes left behind: {set(children_of(os.getpid())) - before}"
    )
