"""adapters/micro_batch.py: callers submitted together share a batch, results come back in order
(an exception to its own caller), and a lone caller is answered after its window."""

from __future__ import annotations

import asyncio

import pytest

from ticketflow.adapters.micro_batch import MicroBatcher


async def test_callers_submitted_together_share_a_batch_and_get_their_own_results() -> None:
    batches: list[list[int]] = []

    async def run(batch: list[int]) -> list[int | Exception]:
        batches.append(batch)
        return [ValueError(n) if n < 0 else n * 10 for n in batch]

    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_batch=3)
    results = await asyncio.gather(
        *(batcher.submit(n) for n in (1, 2, -3, 4)), return_exceptions=True
    )
    assert results[:2] == [10, 20] and results[3] == 40
    assert isinstance(results[2], ValueError)
    assert batches == [[1, 2, -3], [4]]  # at most max_batch each, in submission order
    assert not batcher.busy


@pytest.mark.parametrize("window", [0.0, 0.001])
async def test_a_lone_caller_is_answered_after_at_most_its_window(window: float) -> None:
    async def run(batch: list[str]) -> list[str | Exception]:
        return [item.upper() for item in batch]

    batcher: MicroBatcher[str, str] = MicroBatcher(run, max_batch=10, window=window)
    assert await batcher.submit("a") == "A"
    assert await batcher.submit("b") == "B"  # a new drain after the last one ended
