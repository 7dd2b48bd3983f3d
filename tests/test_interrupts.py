"""veil.io.interrupts: Ctrl-C is held during a critical step and delivered right after it."""

from __future__ import annotations

import signal
import threading

import pytest

from veil.io.interrupts import sigint_deferred


def _sigint_self() -> None:
    """SIGINT to this thread (``raise``: os.kill may hand it to a library's native thread,
    which may run the C handler only after the block ended), then bytecode to handle it at."""
    signal.raise_signal(signal.SIGINT)
    for _ in range(100):
        pass


def test_sigint_inside_is_delivered_after_the_block():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_deferred():
            _sigint_self()
            steps.append("finished the step")
    assert steps == ["finished the step"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_sigint_is_delivered_at_once():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_deferred():
            _sigint_self()
            steps.append("after the first")
            _sigint_self()
            steps.append("after the second")
    assert steps == ["after the first"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_sigint_no_interrupt_and_the_handler_is_restored():
    with sigint_deferred():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_custom_handler_gets_the_held_signal():
    got = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        with sigint_deferred():
            _sigint_self()
            assert got == []
        assert got == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_it_is_a_no_op():
    errors = []

    def work():
        try:
            with sigint_deferred():
                pass
        except Exception as exc:  # signal.signal would raise ValueError here
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert errors == []
