"""veil.io.background: in-order calls on one thread; errors reach the caller; no call outlives
the ``with`` block."""

from __future__ import annotations

import threading
import time

import pytest

from veil.io.background import Background


class Boom(Exception):
    pass


def test_calls_run_in_order_on_another_thread():
    seen, threads = [], set()

    def call(i):
        seen.append(i)
        threads.add(threading.get_ident())

    with Background(depth=2) as bg:
        for i in range(50):
            bg.submit(call, i)
        bg.finish()
    assert seen == list(range(50))
    assert threads and threading.get_ident() not in threads


def test_an_error_is_raised_at_the_next_submit_and_later_calls_do_not_run():
    ran = []

    def call(i):
        if i == 3:
            raise Boom("encoder failed")
        ran.append(i)

    with pytest.raises(Boom, match="encoder failed"):
        with Background(depth=1) as bg:
            for i in range(100):
                bg.submit(call, i)
                time.sleep(0.001)
            bg.finish()
    assert ran == [0, 1, 2]


def test_an_error_in_the_last_call_is_raised_by_finish():
    def fail():
        raise Boom("last")

    with Background() as bg:
        bg.submit(fail)
        with pytest.raises(Boom, match="last"):
            bg.finish()


def test_leaving_by_an_exception_drops_queued_calls_and_waits_for_the_thread():
    started, ran = threading.Event(), []

    def slow(i):
        started.set()
        time.sleep(0.05)
        ran.append(i)

    with pytest.raises(KeyboardInterrupt):
        with Background(depth=8) as bg:
            for i in range(8):
                bg.submit(slow, i)
            started.wait(5)
            raise KeyboardInterrupt
    # the call in progress finished before the block was left; the queued ones never ran
    assert ran == [0]
    assert not bg._thread.is_alive()


def test_submit_blocks_when_the_queue_is_full():
    gate, taken = threading.Event(), threading.Event()
    with Background(depth=1) as bg:
        bg.submit(lambda: (taken.set(), gate.wait()))
        assert taken.wait(5)  # taken by the thread, which now waits
        bg.submit(lambda: None)  # fills the queue
        blocked = threading.Thread(target=bg.submit, args=(lambda: None,))
        blocked.start()
        blocked.join(0.3)
        assert blocked.is_alive()  # no room: waits
        gate.set()
        blocked.join(5)
        assert not blocked.is_alive()
        bg.finish()


def test_an_interruption_while_waiting_still_waits_for_the_running_call_and_drops_the_rest():
    """Ctrl-C while ``finish`` waits: the call in progress (an encode writing to a container)
    completes before the interruption is raised, so the caller never closes the container
    under it; the calls still queued are dropped."""
    import os
    import signal

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread only")
    interrupted, release, ran = threading.Event(), threading.Event(), []

    def on_sigint(signum, frame):
        interrupted.set()
        raise KeyboardInterrupt

    def first():
        os.kill(os.getpid(), signal.SIGINT)  # arrives while the caller waits in finish()
        interrupted.wait(10)
        release.wait(1.0)  # still writing when the caller is interrupted
        ran.append("first")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        bg = Background(depth=4)
        bg.submit(first)
        bg.submit(ran.append, "second")
        with pytest.raises(KeyboardInterrupt):
            bg.finish()
        ran_when_raised = list(ran)
    finally:
        signal.signal(signal.SIGINT, previous)
        release.set()
    assert interrupted.is_set() and ran_when_raised == ["first"]
    time.sleep(0.2)  # (a wrongly running second call would show up here)
    assert ran == ["first"]
