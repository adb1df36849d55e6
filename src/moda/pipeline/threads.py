"""Running one stage of the pipeline ahead of the next, in a worker thread.

Motion generation (torch, which releases the GIL in its kernels) runs in a worker while the calling thread
renders and encodes (OpenCV, numpy and x264 release it too), so on a 2-core machine the stages overlap.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import cv2
import torch
from threadpoolctl import threadpool_limits

T = TypeVar("T")
_POLL_SECONDS = 0.05


class _Finished:
    """Put on the queue after the last item; carries the worker's exception, if any."""

    def __init__(self, error: BaseException | None = None):
        self.error = error


def in_background(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield what `items` yields, computed in a worker thread up to `depth` items ahead. An exception in the
    worker is raised here; when the consumer stops early (an exception, or closing this generator), the worker
    stops at its next item and `items` is closed, so nothing keeps running behind the caller's back."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not offer(item):
                    break
        except BaseException as error:  # handed to the consumer, who raises it
            offer(_Finished(error))
        else:
            offer(_Finished())
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name="moda-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if isinstance(item, _Finished):
                if item.error is not None:
                    raise item.error
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


@contextmanager
def cores_shared_by_two_stages() -> Iterator[None]:
    """While two stages run at once, give each half of torch's intra-op threads, and BLAS (numpy's small
    products in the renderer) and OpenCV (the warp) one; restored after. Measured on 2 cores, 20 s of speech:
    9.6 s so, 11.4 s with the generator on two threads and BLAS on its default two (they contend for the cores
    and spin); at 1280 px, 11.3 s with OpenCV on one thread, 11.9 s on its default two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(threads // 2, 1))
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        cv2.setNumThreads(cv_threads)
        torch.set_num_threads(threads)
