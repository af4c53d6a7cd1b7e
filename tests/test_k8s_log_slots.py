"""The bound on a runner's pod log requests (tuner.k8s.log_slots), without a cluster."""

from __future__ import annotations

import asyncio

import pytest

from tuner.k8s.informer import Changes
from tuner.k8s.log_slots import LogSlots


def changes() -> tuple[Changes, asyncio.Event]:
    event = asyncio.Event()
    return Changes((event,), asyncio.Event()), event


def test_a_trial_without_a_free_follow_slot_looks_again_on_a_change() -> None:
    async def main() -> None:
        slots = LogSlots(follows=1, reads=1)
        first, _ = changes()
        assert await slots.follow_or_change(first)
        second, changed = changes()
        waiting = asyncio.ensure_future(slots.follow_or_change(second))
        await asyncio.sleep(0)
        assert not waiting.done()  # every follow slot is taken
        changed.set()  # its pod changed (its container may have ended): look again
        assert await asyncio.wait_for(waiting, 5) is False
        assert slots.open == 1
        third, _ = changes()
        waiting = asyncio.ensure_future(slots.follow_or_change(third))
        await asyncio.sleep(0)
        slots.end_follow()  # the first trial's log ended: its slot goes to the next
        assert await asyncio.wait_for(waiting, 5) is True
        assert (slots.open, slots.peak) == (1, 1)
        slots.end_follow()
        assert slots.open == 0

    asyncio.run(main())


def test_one_shot_reads_are_bounded_and_need_no_follow_slot() -> None:
    async def main() -> None:
        slots = LogSlots(follows=1, reads=2)
        held, _ = changes()
        assert await slots.follow_or_change(held)  # a long trial holds the only follow slot
        inside = 0
        most = 0

        async def read() -> None:
            nonlocal inside, most
            async with slots.read_once():
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0.01)
                inside -= 1

        await asyncio.wait_for(asyncio.gather(*(read() for _ in range(6))), 5)
        assert most == 2  # six ended trials read, two at a time, beside the followed one
        assert (slots.open, slots.peak) == (1, 3)

    asyncio.run(main())


def test_a_cancelled_wait_for_a_slot_is_cancelled_and_loses_no_slot() -> None:
    async def main() -> None:
        slots = LogSlots(follows=1, reads=1)
        held, _ = changes()
        assert await slots.follow_or_change(held)
        waiting_changes, _ = changes()
        waiting = asyncio.ensure_future(slots.follow_or_change(waiting_changes))
        await asyncio.sleep(0)
        slots.end_follow()  # the slot is handed to the waiter's acquire...
        waiting.cancel()  # ...as the waiter is cancelled
        with pytest.raises(asyncio.CancelledError):
            await waiting
        again, _ = changes()  # the slot came back: the next one gets it at once
        assert await asyncio.wait_for(slots.follow_or_change(again), 5) is True

    asyncio.run(main())


def test_slots_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LogSlots(follows=0)
