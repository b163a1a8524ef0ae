"""Run a coroutine to completion from synchronous code, also when an event loop is already running
(a notebook): then it runs on a fresh loop in a helper thread and its result or error comes back here."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")


def run_sync(make_coroutine: Callable[[], Awaitable[T]]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coroutine())
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(asyncio.run(make_coroutine()))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread below
            box.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]
