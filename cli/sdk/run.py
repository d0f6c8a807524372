"""Running the SDK's blocking and trio work from any caller: a script, a trio program, or a
Jupyter cell (where an asyncio loop already runs in the thread).

The sync API never starts an event loop in a thread that runs one: libp2p's trio work then
runs in a worker thread that the call waits on. The async API hands blocking work to a worker
thread (anyio, so it serves asyncio and trio callers alike) and never blocks the caller's loop.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def loop_running() -> bool:
    """True when an asyncio or trio loop runs in this thread (e.g. inside a Jupyter cell).

    >>> loop_running()
    False
    >>> asyncio.run(_probe())
    True
    """
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        pass
    try:
        import sniffio

        sniffio.current_async_library()
        return True
    except Exception:  # noqa: BLE001 - sniffio missing or no library: no loop
        return False


async def _probe() -> bool:
    return loop_running()


def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a fresh thread, waited on; its exception is re-raised here."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e

    t = threading.Thread(target=target, name="dnode-sdk", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def run_trio(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run trio coroutine function ``fn(*args)`` to completion from sync code: here, or in a
    worker thread when this thread already runs an event loop (a notebook cell).

    >>> import trio
    >>> async def add(a, b):
    ...     await trio.sleep(0)
    ...     return a + b
    >>> run_trio(add, 2, 3)
    5
    >>> async def from_a_cell():  # as Jupyter runs a cell: inside a running asyncio loop
    ...     return run_trio(add, 4, 5)
    >>> asyncio.run(from_a_cell())
    9
    """
    import trio

    call = functools.partial(trio.run, fn, *args)
    return in_thread(call) if loop_running() else call()


async def to_thread(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Await blocking ``fn(*args, **kw)`` in a worker thread (asyncio or trio caller).

    >>> asyncio.run(to_thread(sum, [1, 2, 3]))
    6
    """
    import anyio

    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kw))


class Progress:
    """A notebook-friendly progress bar over a task's lifecycle (``tqdm.auto``: a widget in
    Jupyter when ipywidgets is installed, text otherwise), or nothing when ``enabled`` is false.

    >>> p = Progress(3, "task 1", enabled=False)
    >>> p.update(2, "computing"); p.close()
    """

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        self._bar: Any = None
        self._n, self._postfix = 0, ""
        if enabled:
            import warnings

            with warnings.catch_warnings():  # no ipywidgets: tqdm.auto falls back to text
                warnings.simplefilter("ignore")
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, desc=desc, leave=True, bar_format=BAR)

    def update(self, n: int, postfix: str) -> None:
        """Move to step ``n`` of ``total`` showing ``postfix``; redrawn only on a change."""
        if self._bar is None or (n <= self._n and postfix == self._postfix):
            return
        self._postfix = postfix
        self._bar.set_postfix_str(postfix, refresh=False)
        if n > self._n:
            self._bar.update(n - self._n)
            self._n = n
        else:
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


BAR = "{desc}: {n}/{total} {bar} {postfix}"
