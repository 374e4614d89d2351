"""Group commit in general: callers submit items one by one, a drain loop handles them in
batches, so N concurrent callers cost one transaction per batch instead of N."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    """`run` gets a batch and returns one result (or exception) per item, in order. While one
    batch runs the next one gathers, so batches grow with the load and a lone caller waits for
    nobody but `window` seconds (a burst's first batch gathers that long)."""

    def __init__(
        self,
        run: Callable[[list[In]], Awaitable[list[Out | Exception]]],
        max_batch: int,
        *,
        window: float = 0.0,
    ) -> None:
        self._run, self._max_batch, self._window = run, max_batch, window
        self._queue: list[tuple[In, asyncio.Future[Out]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def submit(self, item: In) -> Out:
        done: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._queue.append((item, done))
        if self._drain is None:
            self._drain = asyncio.create_task(self._drain_queue())
        return await done

    @property
    def busy(self) -> bool:
        """Whether a batch is gathering or running."""
        return self._drain is not None

    async def _drain_queue(self) -> None:
        try:
            await asyncio.sleep(self._window)  # the callers ready by then join the first batch
            while self._queue:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as error:  # the whole batch failed together
                    results = [error] * len(batch)
                for (_, done), result in zip(batch, results, strict=True):
                    if done.done():
                        continue  # its caller went away
                    if isinstance(result, Exception):
                        done.set_exception(result)
                    else:
                        done.set_result(result)
        finally:
            self._drain = None  # no await since the emptiness check: nothing slips in unseen
