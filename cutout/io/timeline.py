"""Timestamps that only go forward, for frames and packets whose file says otherwise.

    >>> from cutout.io.timeline import Timeline, increasing
    >>> timeline = Timeline(jump=6000, keep=True)           # 2 frames at 30 fps, time base 1/90000  # doctest: +SKIP
    >>> for frame in increasing(frames, timeline, stamp, restamp, step): ...                       # doctest: +SKIP

An output needs timestamps that increase, and most files have them. Three kinds do not:

* recordings joined end to end (``cat part1.ts part2.ts``, a camera's or a stream's segments): each part's
  timestamps start again, a jump back of more than a few frames (``Timeline.jump``). The parts are placed one
  after another: from the first item of a part on, every timestamp is moved on by the same amount, so the part
  follows the one before after one item's duration. A jump back is taken for such a restart only when the next
  item carries on from it (is later, but still before where the stream was), and a jump ahead (a pause: a
  screen recording shows nothing new for a while) only when the next item follows it; a single item with a
  wild timestamp (damaged data), back or ahead, is not allowed to push the rest of the stream on.
* frames whose timestamps are shuffled: an AVI with B-frames stores none, and the decoder gives its frames in the
  right order but with their timestamps out of order (1, 4, 3, 5, 2, ...);
* an item whose timestamp repeats or goes back a little (a damaged or badly muxed file).

A frame of the last two kinds, and a wild one, is kept one tick (one step of the time base) after the one
before (``Timeline.keep``): the frames are in the order they are shown, so none is lost, and with timestamps
shuffled by at most n frames the picture is never more than n frames late. An audio packet of those kinds is
left out instead, as sound placed over the sound before it would be heard twice.

Timestamps are integers in the stream's own time base; items without one pass through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")


@dataclass
class Timeline:
    """What :func:`increasing` does in one stream, and what it found.

    ``jump``: how far back (in the stream's time base) a timestamp must go to be taken for the start of a new part
    rather than an item out of order. ``keep``: items out of order are kept one tick after the one before (frames),
    not left out (packets).
    """

    jump: int
    keep: bool = False
    restarts: int = 0  # parts after the first (timestamps that started again)
    moved: int = 0  # items out of order kept one tick after the one before
    dropped: int = 0  # items out of order left out


def increasing(
    items: Iterator[Item],
    timeline: Timeline,
    stamp: Callable[[Item], int | None],
    restamp: Callable[[Item, int], None],
    step: Callable[[Item], int],
) -> Iterator[Item]:
    """``items`` with increasing timestamps (see the module docstring); ``timeline`` counts what was done.

    Args:
        items: frames or packets, in the order they are shown (frames) or sent (packets).
        timeline: what to do, and the counts, updated as items pass.
        stamp: an item's timestamp, or None (passed through as it is).
        restamp: sets an item's timestamp.
        step: an item's duration (at least 1): how long after the last item of a part the next part begins.
    """
    order = Increasing(timeline, stamp, restamp, step)
    for item in items:
        yield from order.add(item)
    yield from order.end()


class Increasing(Generic[Item]):
    """:func:`increasing` an item at a time, for streams whose items come interleaved with other streams'."""

    def __init__(
        self,
        timeline: Timeline,
        stamp: Callable[[Item], int | None],
        restamp: Callable[[Item, int], None],
        step: Callable[[Item], int],
    ) -> None:
        self.timeline, self.stamp, self.restamp, self.step = timeline, stamp, restamp, step
        self.shift = 0  # what the parts before the current one add to its timestamps
        self.last: int | None = None  # the timestamp of the last item given out
        self.held: tuple[Item, int] | None = None  # an item that went far back: a new part, or a wild one?

    def add(self, item: Item) -> list[Item]:
        """The items that can be given out now that ``item`` came, in order (none, one, or a held one and it)."""
        raw = self.stamp(item)
        if raw is None:
            return [item]
        out = []
        if self.held is not None:
            out.extend(self._settle(raw + self.shift))  # a new part moves this one on too
        time = raw + self.shift
        if self.last is not None and abs(time - self.last) > self.timeline.jump:
            self.held = (item, time)  # far from the last: the next one tells a new part or a pause from a wild one
        elif self.last is None or time > self.last:
            self.restamp(item, time)
            self.last = time
            out.append(item)
        else:
            out.extend(self._out_of_order(item))
        return out

    def end(self) -> list[Item]:
        """What is still held at the end of the stream: its very last item, placed after the rest (a new part),
        or at its own time (a pause)."""
        if self.held is None:
            return []
        first, first_time = self.held
        self.held = None
        assert self.last is not None
        if first_time < self.last:
            self.timeline.restarts += 1
            first_time = self.last + self.step(first)
        self.last = first_time
        self.restamp(first, first_time)
        return [first]

    def _settle(self, time: int) -> list[Item]:
        """The held item, now that the next one is at ``time``: the start of a new part when the next one carries
        on from it below where the stream was, a pause when the next one follows it after a jump ahead, else wild."""
        assert self.held is not None and self.last is not None
        first, first_time = self.held
        self.held = None
        if first_time < time <= self.last:  # back, and the next one carries on from it: a new part
            moved = self.last + self.step(first) - first_time
            self.shift, self.last = self.shift + moved, first_time + moved
            self.timeline.restarts += 1
            self.restamp(first, self.last)
            return [first]
        if self.last < first_time < time:  # ahead, and the next one follows it: a pause (nothing was shown)
            self.last = first_time
            self.restamp(first, first_time)
            return [first]
        return self._out_of_order(first)  # on its own, far back or far ahead: a wild timestamp

    def _out_of_order(self, item: Item) -> list[Item]:
        """An item whose timestamp is not after the last one's: one tick after it, or left out."""
        assert self.last is not None
        if not self.timeline.keep:
            self.timeline.dropped += 1
            return []
        self.timeline.moved += 1
        self.last += 1
        self.restamp(item, self.last)
        return [item]
