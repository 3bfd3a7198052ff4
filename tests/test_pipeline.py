"""The concurrency helpers: order kept, memory bounded, errors carried across, no thread outlives a stage."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from cutout.pipeline import batched, parallel_map, threaded


def _cutout_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("cutout-")]


def _wait_for_no_threads() -> None:
    deadline = time.monotonic() + 5
    while _cutout_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _cutout_threads()


def test_parallel_map_keeps_order_under_uneven_work() -> None:
    def slow_for_small(x: int) -> int:
        time.sleep(0.02 if x % 3 == 0 else 0.0)
        return x * 10

    assert list(parallel_map(slow_for_small, range(20), workers=4)) == [x * 10 for x in range(20)]
    _wait_for_no_threads()


def test_parallel_map_bounds_the_work_in_flight() -> None:
    pulled = 0

    def source() -> Iterator[int]:
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield i

    results = parallel_map(lambda x: x, source(), workers=2, ahead=3)
    assert next(results) == 0
    time.sleep(0.1)
    assert pulled <= 6  # never reads far ahead of the consumer (ahead + queue hand-offs), whatever the input length
    results.close()
    _wait_for_no_threads()


def test_threaded_is_bounded_and_ordered() -> None:
    produced = 0

    def source() -> Iterator[int]:
        nonlocal produced
        for i in range(100):
            produced += 1
            yield i

    stage = threaded(source(), maxsize=2)
    assert next(stage) == 0
    time.sleep(0.1)
    assert produced <= 4
    assert list(stage) == list(range(1, 100))
    _wait_for_no_threads()


def test_error_in_a_producer_reaches_the_consumer_and_stops_everything() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise RuntimeError("decoder exploded")

    stage = threaded(parallel_map(lambda x: x, source(), workers=2), maxsize=1)
    with pytest.raises(RuntimeError, match="decoder exploded"):
        list(stage)
    _wait_for_no_threads()


def test_error_in_a_worker_propagates_in_order() -> None:
    def fn(x: int) -> int:
        if x == 5:
            raise ValueError("bad item 5")
        return x

    seen = []
    with pytest.raises(ValueError, match="bad item 5"):
        for value in parallel_map(fn, range(10), workers=3):
            seen.append(value)
    assert seen == [0, 1, 2, 3, 4]
    _wait_for_no_threads()


def test_closing_the_consumer_stops_an_endless_producer() -> None:
    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    stage = threaded(parallel_map(lambda x: x, endless(), workers=2), maxsize=2)
    assert [next(stage) for _ in range(5)] == [0, 1, 2, 3, 4]
    stage.close()
    _wait_for_no_threads()


def test_batched() -> None:
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_ready_result_is_handed_on_while_the_input_waits() -> None:
    release = threading.Event()

    def slow_source() -> Iterator[int]:
        yield 1
        release.wait(5)  # like --watch: the next file has not appeared yet
        yield 2

    results = parallel_map(lambda x: x * 10, slow_source(), workers=2, ahead=3)
    started = time.monotonic()
    assert next(results) == 10
    assert time.monotonic() - started < 2
    release.set()
    assert list(results) == [20]
    _wait_for_no_threads()


def test_cancel_takes_down_a_chain_of_stages_blocked_on_an_idle_source() -> None:
    cancel = threading.Event()

    def idle_source() -> Iterator[int]:
        yield 1
        while not cancel.is_set():  # like --watch with no new files
            time.sleep(0.05)

    first = parallel_map(lambda x: x, idle_source(), workers=2, cancel=cancel)
    second = parallel_map(lambda x: x + 1, first, workers=2, cancel=cancel)
    assert next(second) == 2
    started = time.monotonic()
    cancel.set()
    second.close()
    assert time.monotonic() - started < 2
    _wait_for_no_threads()


@pytest.mark.parametrize("outermost", ["parallel_map", "threaded"])
def test_ctrl_c_in_a_stage_cancels_the_stages_before_it_at_once(outermost: str) -> None:
    cancel = threading.Event()

    def idle_source() -> Iterator[int]:
        yield 1
        while not cancel.wait(0.05):  # like --watch with no new files: only the pipeline's cancel ends the wait
            pass

    first = parallel_map(lambda x: x, idle_source(), workers=2, cancel=cancel)
    second = parallel_map(lambda x: x + 1, first, workers=2, cancel=cancel)
    stage = second if outermost == "parallel_map" else threaded(second, cancel=cancel)
    assert next(stage) == 2
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        stage.throw(KeyboardInterrupt)  # where the signal lands: nobody has set cancel yet
    assert cancel.is_set()
    assert time.monotonic() - started < 2  # each stage was waited for 5 s in turn before
    _wait_for_no_threads()


def test_an_error_still_reaches_the_consumer_through_a_cancellable_chain() -> None:
    cancel = threading.Event()

    def fail(x: int) -> int:
        raise ValueError(f"bad {x}")

    failing = parallel_map(fail, range(3), workers=2, cancel=cancel)
    stage = threaded(parallel_map(lambda x: x, failing, workers=2, cancel=cancel), cancel=cancel)
    with pytest.raises(ValueError, match="bad 0"):
        list(stage)
    _wait_for_no_threads()


def test_a_pipeline_that_runs_to_its_end_leaves_cancel_alone() -> None:
    cancel = threading.Event()
    stage = threaded(parallel_map(lambda x: x * 2, range(5), workers=2, cancel=cancel), cancel=cancel)
    assert list(stage) == [0, 2, 4, 6, 8]
    stage.close()
    assert not cancel.is_set()
    _wait_for_no_threads()
