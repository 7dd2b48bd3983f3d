"""veil.io.interrupts: Ctrl-C and SIGTERM are held during a critical step and delivered right
after it; SIGTERM becomes an interruption only where the program asks for it.

Every test starts from explicit handlers (the ``default_signals`` fixture), so none depends on
what the test process inherited (a script's background jobs start with SIGINT ignored).
"""

from __future__ import annotations

import signal
import threading

import pytest

from veil.io.interrupts import Terminated, exit_status, interrupts_deferred, terminate_as_interrupt

pytestmark = pytest.mark.usefixtures("default_signals")


def _signal_self(signum: int = signal.SIGINT) -> None:
    """The signal to this thread (``raise``: os.kill may hand it to a library's native thread,
    which may run the C handler only after the block ended), then bytecode to handle it at."""
    signal.raise_signal(signum)
    for _ in range(100):
        pass


def test_sigint_inside_is_delivered_after_the_block():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            _signal_self()
            steps.append("finished the step")
    assert steps == ["finished the step"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_sigint_is_delivered_at_once():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            _signal_self()
            steps.append("after the first")
            _signal_self()
            steps.append("after the second")
    assert steps == ["after the first"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_sigint_no_interrupt_and_the_handlers_are_restored():
    with interrupts_deferred():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_custom_handler_gets_the_held_signal():
    got = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        with interrupts_deferred():
            _signal_self()
            assert got == []
        assert got == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_sigterm_is_an_interruption_held_like_ctrl_c():
    """Under terminate_as_interrupt (what the CLI runs in), SIGTERM raises Terminated, a
    KeyboardInterrupt (so every Ctrl-C cleanup applies) whose exit status is 143; during a
    critical step it waits for the step to finish."""
    steps = []
    with terminate_as_interrupt(), pytest.raises(KeyboardInterrupt) as info:
        with interrupts_deferred():
            _signal_self(signal.SIGTERM)
            steps.append("finished the step")
    assert steps == ["finished the step"]
    assert isinstance(info.value, Terminated) and info.value.signum == signal.SIGTERM
    assert exit_status(info.value) == 143 and exit_status(KeyboardInterrupt()) == 130
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # put back on leaving


def test_sighup_is_an_interruption_and_nohup_is_kept():
    """A closed terminal (SIGHUP) stops the run like SIGTERM (exit status 129); under nohup
    (SIGHUP ignored) it stays ignored."""
    with terminate_as_interrupt(), pytest.raises(KeyboardInterrupt) as info:
        _signal_self(signal.SIGHUP)
    assert isinstance(info.value, Terminated) and exit_status(info.value) == 129
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with terminate_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            assert callable(signal.getsignal(signal.SIGTERM))  # SIGTERM is still taken
            _signal_self(signal.SIGHUP)  # ignored: nothing raised
    finally:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


def test_ctrl_c_then_sigterm_both_reach_their_handlers_in_order():
    """Two different signals during a step: the second ends the hold, and a handler that
    counts (the stream command's: first = finish, second = abort) sees both, in order."""
    got = []
    old = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with interrupts_deferred():
            _signal_self(signal.SIGINT)
            assert got == []
            _signal_self(signal.SIGTERM)
            assert got == [signal.SIGINT, signal.SIGTERM]
        assert got == [signal.SIGINT, signal.SIGTERM]  # nothing delivered twice
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def test_sigterm_at_its_default_action_is_not_touched():
    """The library alone never changes SIGTERM: without terminate_as_interrupt it keeps its
    default action (not held: a handler would have to be installed to hold it)."""
    with interrupts_deferred():
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_an_ignored_sigterm_stays_ignored():
    """A parent that made veil ignore SIGTERM keeps that choice."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with terminate_as_interrupt():
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        _signal_self(signal.SIGTERM)  # ignored: nothing raised
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN


def test_outside_the_main_thread_both_are_no_ops():
    """A service may call the API from a worker thread, where Python cannot set handlers."""
    errors = []

    def work():
        try:
            with terminate_as_interrupt(), interrupts_deferred():
                pass
        except Exception as exc:  # signal.signal would raise ValueError here
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert errors == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
