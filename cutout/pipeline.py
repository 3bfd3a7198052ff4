"""Stages joined by bounded queues: decode (threads) -> batch -> infer (one thread) -> finish + encode (threads).

The only module that starts threads. :func:`threaded` moves a generator into a thread behind a bounded queue,
carries its first error across and stops it when the consumer goes away; :func:`parallel_map` runs a function
over items in a small thread pool, in order, with a bounded number in flight. Memory is bounded by those
limits, never by the number of inputs.

    >>> list(parallel_map(lambda x: x * x, range(5), workers=2))
    [0, 1, 4, 9, 16]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def threaded(
    source: Iterable[T], maxsize: int = 2, name: str = "cutout-stage", cancel: threading.Event | None = None
) -> Generator[T, None, None]:
    """Iterate ``source`` in its own thread, at most ``maxsize`` items ahead of the consumer.

    An exception in the producer is re-raised in the consumer. Closing the returned generator (or an error
    in the consumer) stops the producer at its next item. Setting ``cancel`` (shared by every stage of a
    pipeline) ends the stage from either side within a tenth of a second, even while it waits: that is how a
    whole pipeline of threads is taken down on Ctrl-C. Ctrl-C lands in the innermost stage the main thread
    waits in, so that stage sets ``cancel`` itself, first: the stages before it, and a source that waits on
    ``cancel`` (``--watch``'s folder scan), end at once instead of each being waited for in turn.
    """
    items: queue.Queue[Any] = queue.Queue(maxsize=max(1, maxsize))
    stop = threading.Event()

    def stopped() -> bool:
        return stop.is_set() or (cancel is not None and cancel.is_set())

    def put(item: Any) -> bool:
        while not stopped():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put(item):
                    return
        except BaseException as error:  # carried to the consumer, re-raised there
            put(_Failure(error))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = items.get(timeout=0.1)
            except queue.Empty:
                if cancel is not None and cancel.is_set():
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    except KeyboardInterrupt:
        _interrupted(cancel)
        raise
    finally:
        stop.set()
        close = getattr(source, "close", None)
        thread.join(timeout=5.0)
        if close is not None and not thread.is_alive():
            close()


def parallel_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    ahead: int | None = None,
    cancel: threading.Event | None = None,
) -> Generator[R, None, None]:
    """``map(fn, items)`` on ``workers`` threads, results in input order, about ``ahead`` submitted early.

    Items are pulled and submitted by a feeder thread, so a result is handed on as soon as it is ready even
    while the input waits for its next item (``--watch``). Exceptions raised by ``fn`` propagate to the
    consumer in order. On close or error, pending work is cancelled and running work is waited for, so no
    thread outlives the generator.
    """
    limit = max(1, ahead if ahead is not None else workers + 1)
    executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="cutout-worker")
    submitted = (executor.submit(fn, item) for item in items)
    futures = threaded(submitted, maxsize=limit, name="cutout-feeder", cancel=cancel)
    try:
        for future in futures:
            yield future.result()
    except KeyboardInterrupt:
        _interrupted(cancel)
        raise
    finally:
        futures.close()
        executor.shutdown(wait=True, cancel_futures=True)


def _interrupted(cancel: threading.Event | None) -> None:
    """Ctrl-C reached a stage: cancel the whole pipeline before this stage waits for its own thread.

    Only on Ctrl-C: an error is carried on to the consumer as it is, which a cancelled pipeline would drop.
    """
    if cancel is not None:
        cancel.set()


def in_background(fn: Callable[[], R], name: str = "cutout-load") -> Future[R]:
    """Start ``fn()`` in a thread; the future holds its result or its exception.

    Not a daemon: a process that ends early (an error, Ctrl-C) waits for ``fn`` to return instead of tearing the
    interpreter down under it (onnxruntime aborts the process if its session is built during shutdown).
    """
    future: Future[R] = Future()

    def run() -> None:
        try:
            future.set_result(fn())
        except BaseException as error:  # carried to whoever asks for the result
            future.set_exception(error)

    threading.Thread(target=run, name=name, daemon=False).start()
    return future


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
