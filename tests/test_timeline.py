"""Timestamps made to increase: joined recordings follow one another; shuffled, repeated and wild ones are kept
one tick after the one before (frames) or left out (packets)."""

from __future__ import annotations

import pytest

from cutout.io.timeline import Timeline, increasing


def _run(
    stamps: list[int | None], jump: int = 100, step: int = 10, keep: bool = True
) -> tuple[list[tuple[int, int | None]], Timeline]:
    """The (index, new timestamp) of each item that comes out, and the counts."""
    items = [[index, stamp] for index, stamp in enumerate(stamps)]
    timeline = Timeline(jump, keep)

    def restamp(item: list, time: int) -> None:
        item[1] = time

    out = increasing(iter(items), timeline, lambda item: item[1], restamp, lambda item: step)
    return [(item[0], item[1]) for item in out], timeline


def test_increasing_timestamps_pass_unchanged() -> None:
    assert _run([0, 10, 20, 35, 1000]) == ([(0, 0), (1, 10), (2, 20), (3, 35), (4, 1000)], Timeline(100, True))


def test_joined_recordings_follow_one_another() -> None:
    # three parts of 3 frames, each starting again at 0 (cat a.ts b.ts c.ts)
    out, timeline = _run([0, 10, 20, 0, 10, 20, 0, 10, 20], jump=15)
    assert [time for _, time in out] == [0, 10, 20, 30, 40, 50, 60, 70, 80]
    assert (timeline.restarts, timeline.moved, timeline.dropped) == (2, 0, 0)


def test_a_part_starting_far_back_but_not_at_zero() -> None:
    out, timeline = _run([500, 510, 520, 200, 210, 220])
    assert [time for _, time in out] == [500, 510, 520, 530, 540, 550] and timeline.restarts == 1


@pytest.mark.parametrize(("keep", "expected"), [(True, [0, 10, 20, 30, 400, 410, 411, 420, 430]), (False, None)])
def test_a_wild_timestamp_is_not_taken_for_a_new_part(keep: bool, expected: list[int] | None) -> None:
    # damaged data: one item far back; the next carries on where the stream was
    out, timeline = _run([0, 10, 20, 30, 400, 410, 0, 420, 430], keep=keep)
    if keep:  # a frame: kept right after the one before
        assert [time for _, time in out] == expected and (timeline.restarts, timeline.moved) == (0, 1)
    else:  # a packet: left out
        assert [index for index, _ in out] == [0, 1, 2, 3, 4, 5, 7, 8] and timeline.dropped == 1


def test_shuffled_timestamps_keep_every_frame_in_order_never_more_than_the_shuffle_late() -> None:
    # an AVI with B-frames: the frames come in the order they are shown, their timestamps shuffled
    shuffled = [1, 4, 3, 5, 2, 8, 7, 9, 6, 10, 13, 12, 11, 14]
    out, timeline = _run(shuffled, jump=20, step=1)
    assert [index for index, _ in out] == list(range(len(shuffled)))
    times = [time for _, time in out]
    assert all(a < b for a, b in zip(times[:-1], times[1:], strict=True))
    assert all(time - (index + 1) <= 3 for index, time in enumerate(times))  # shuffled by up to 3 frames
    assert (timeline.restarts, timeline.dropped) == (0, 0) and times[-1] == 16


def test_repeats_and_small_steps_back() -> None:
    out, timeline = _run([0, 10, 10, 20, 15, 30])
    assert out == [(0, 0), (1, 10), (2, 11), (3, 20), (4, 21), (5, 30)] and timeline.moved == 2
    out, timeline = _run([0, 10, 10, 20, 15, 30], keep=False)
    assert out == [(0, 0), (1, 10), (3, 20), (5, 30)] and timeline.dropped == 2


def test_items_without_a_timestamp_pass_through_and_a_last_item_far_back_goes_last() -> None:
    out, timeline = _run([None, 0, None, 10, 500, 600, 0])
    assert out == [(0, None), (1, 0), (2, None), (3, 10), (4, 500), (5, 600), (6, 610)]
    assert timeline.restarts == 1


def test_a_pause_is_kept_and_a_wild_timestamp_far_ahead_is_not() -> None:
    # a screen recording shows nothing new for 5 s: its next frames follow the jump ahead
    out, timeline = _run([0, 10, 20, 520, 530, 540])
    assert [time for _, time in out] == [0, 10, 20, 520, 530, 540] and timeline == Timeline(100, True)
    # damaged data: one frame 10 hours ahead, the next back where the stream was; it pushed the rest 10 hours on
    # (and MP4's muxer refused the pair of times x264 then gave: "pts/dts pair unsupported")
    out, timeline = _run([0, 10, 20, 36_000_000, 30, 40])
    assert [time for _, time in out] == [0, 10, 20, 21, 30, 40] and timeline.moved == 1
    out, timeline = _run([0, 10, 20, 36_000_000, 30, 40], keep=False)
    assert [index for index, _ in out] == [0, 1, 2, 4, 5] and timeline.dropped == 1
    # a jump ahead as the very last item is kept where it is
    assert _run([0, 10, 900])[0] == [(0, 0), (1, 10), (2, 900)]
