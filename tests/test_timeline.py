"""Timestamps made to increase: joined recordings follow one another, stray and repeated ones are left out."""

from __future__ import annotations

from cutout.io.timeline import Timeline, increasing


def _run(stamps: list[int | None], jump: int = 100, step: int = 10) -> tuple[list[tuple[int, int | None]], Timeline]:
    """The (index, new timestamp) of each item that comes out, and the counts."""
    items = [[index, stamp] for index, stamp in enumerate(stamps)]
    timeline = Timeline(jump)

    def restamp(item: list, time: int) -> None:
        item[1] = time

    out = increasing(iter(items), timeline, lambda item: item[1], restamp, lambda item: step)
    return [(item[0], item[1]) for item in out], timeline


def test_increasing_timestamps_pass_unchanged() -> None:
    assert _run([0, 10, 20, 35, 1000]) == ([(0, 0), (1, 10), (2, 20), (3, 35), (4, 1000)], Timeline(100))


def test_joined_recordings_follow_one_another() -> None:
    # three parts of 3 frames, each starting again at 0 (cat a.ts b.ts c.ts)
    out, timeline = _run([0, 10, 20, 0, 10, 20, 0, 10, 20], jump=15)
    assert [time for _, time in out] == [0, 10, 20, 30, 40, 50, 60, 70, 80]
    assert (timeline.restarts, timeline.dropped) == (2, 0)


def test_a_part_starting_far_back_but_not_at_zero() -> None:
    out, timeline = _run([500, 510, 520, 200, 210, 220])
    assert [time for _, time in out] == [500, 510, 520, 530, 540, 550] and timeline.restarts == 1


def test_a_stray_timestamp_is_left_out_not_taken_for_a_new_part() -> None:
    # damaged data: one frame far back; the next carries on where the stream was
    out, timeline = _run([0, 10, 20, 30, 400, 410, 0, 420, 430])
    assert out == [(0, 0), (1, 10), (2, 20), (3, 30), (4, 400), (5, 410), (7, 420), (8, 430)]
    assert (timeline.restarts, timeline.dropped) == (0, 1)
    # a wild timestamp far ahead is kept (a pause in a recording looks the same); the rest then goes back a little
    out, timeline = _run([0, 10, 20, 90, 30, 40, 100])
    assert [index for index, _ in out] == [0, 1, 2, 3, 6] and timeline.dropped == 2


def test_small_steps_back_and_repeats_are_left_out() -> None:
    out, timeline = _run([0, 10, 10, 20, 15, 30])
    assert out == [(0, 0), (1, 10), (3, 20), (5, 30)] and (timeline.restarts, timeline.dropped) == (0, 2)


def test_items_without_a_timestamp_pass_through_and_a_last_item_far_back_goes_last() -> None:
    out, timeline = _run([None, 0, None, 10, 500, 600, 0])
    assert out == [(0, None), (1, 0), (2, None), (3, 10), (4, 500), (5, 600), (6, 610)]
    assert timeline.restarts == 1
