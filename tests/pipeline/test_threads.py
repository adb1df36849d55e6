import threading
import time

import pytest
import torch

from moda.pipeline.threads import cores_shared_by_two_stages, in_background


def test_items_arrive_in_order_computed_in_another_thread():
    threads = []

    def produce():
        for index in range(20):
            threads.append(threading.current_thread())
            yield index

    assert list(in_background(produce(), depth=3)) == list(range(20))
    assert set(threads) == {threads[0]} and threads[0] is not threading.current_thread()


def test_the_workers_exception_is_raised_to_the_consumer():
    def produce():
        yield 1
        raise ValueError("bad audio")

    pieces = in_background(produce())
    assert next(pieces) == 1
    with pytest.raises(ValueError, match="bad audio"):
        next(pieces)


def test_a_consumer_that_stops_early_stops_the_worker():
    produced, closed = [], threading.Event()

    def produce():
        try:
            for index in range(1000):
                produced.append(index)
                yield index
        finally:
            closed.set()

    pieces = in_background(produce(), depth=2)
    with pytest.raises(RuntimeError):
        for piece in pieces:
            if piece == 3:
                raise RuntimeError("cancelled")
    pieces.close()
    assert closed.wait(5)
    count = len(produced)
    time.sleep(0.2)
    assert len(produced) == count < 10  # nothing runs on behind the caller's back


def test_threads_are_shared_and_restored():
    before = torch.get_num_threads()
    with cores_shared_by_two_stages():
        assert torch.get_num_threads() == max(before // 2, 1)
    assert torch.get_num_threads() == before
