"""One way to wait in a test: on a condition, with a deadline, never on a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 60, what: str = "", interval: float = 0.2
) -> T:
    """Call `predicate` until it returns something truthy, and return that.

    Fails after `timeout` seconds with an AssertionError naming `what` was awaited (a sentence
    such as "run 3 to complete"), so a slow or stuck test says what it was stuck on.
    """
    assert what, "say what is awaited: wait_until(..., what='run 3 to complete')"
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
