"""Server-Timing's API share: calls made together count once, as the wall time they overlapped."""

import asyncio
import time

from web import timing


async def test_calls_made_together_count_as_the_time_waited_not_their_sum():
    box = timing.start()

    async def call(seconds: float) -> None:
        timing.call_started()
        try:
            await asyncio.sleep(seconds)
        finally:
            timing.call_ended()

    started = time.perf_counter()
    await asyncio.gather(call(0.05), call(0.05))
    await call(0.02)
    elapsed = time.perf_counter() - started
    assert box[1] == 2 + 1 and box[2] == 0
    assert 0.065 <= box[0] <= elapsed + 1e-6  # about 0.05 + 0.02, never the 0.12 of the sum


def test_without_a_page_nothing_is_counted():
    timing._api_time.set(None)
    timing.call_started()
    timing.call_ended()
