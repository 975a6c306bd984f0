"""SIGUSR1's stop request: one record for a study and the runs inside it (spikehebb.stopping)."""

import os
import signal
import threading

import pytest

from spikehebb.stopping import STOP_REQUEST, StopSignals, StudyInterrupted

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 on this platform")


def test_a_request_in_a_run_is_kept_for_the_study_around_it_and_forgotten_after_it():
    before = signal.getsignal(signal.SIGUSR1)
    with STOP_REQUEST:
        handler = signal.getsignal(signal.SIGUSR1)
        assert handler != before
        STOP_REQUEST.stop_after("nothing yet")  # no request: no-op
        with StopSignals() as run:
            assert signal.getsignal(signal.SIGUSR1) == handler  # the inner block installs nothing
            os.kill(os.getpid(), signal.SIGUSR1)
            with pytest.raises(KeyboardInterrupt) as raised:
                run.check()
            assert raised.value.signum == signal.SIGUSR1
            run.check(done=True)  # the run's last generation: it just ends
        assert STOP_REQUEST.received and signal.getsignal(signal.SIGUSR1) == handler
        STOP_REQUEST.stop_after("arm 'b' and its tests", last=True)  # the study's last step: it just ends
        with pytest.raises(StudyInterrupted) as info:
            STOP_REQUEST.stop_after("arm 'a' and its tests")
    assert str(info.value) == info.value.what == "stopped by SIGUSR1 after arm 'a' and its tests"
    assert info.value.exit_code == 128 + signal.SIGUSR1 == 138 and info.value.signum == signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) == before and not STOP_REQUEST.received


def test_outside_the_main_thread_nothing_is_installed():
    before, seen = signal.getsignal(signal.SIGUSR1), []

    def enter():
        with STOP_REQUEST:
            seen.append(signal.getsignal(signal.SIGUSR1))

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    assert seen == [before] and signal.getsignal(signal.SIGUSR1) == before


def test_a_block_in_another_thread_leaves_the_main_threads_alone():
    """A thread's block neither counts nor installs: the main thread's study still records
    SIGUSR1, and restores the handler when it ends, whatever the thread does meanwhile."""
    before, entered, leave = signal.getsignal(signal.SIGUSR1), threading.Event(), threading.Event()
    errors = []

    def hold():
        try:
            with STOP_REQUEST:
                entered.set()
                leave.wait(10)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    thread = threading.Thread(target=hold)
    thread.start()
    entered.wait(10)
    with STOP_REQUEST:
        assert signal.getsignal(signal.SIGUSR1) != before
        os.kill(os.getpid(), signal.SIGUSR1)
        with pytest.raises(StudyInterrupted):
            STOP_REQUEST.stop_after("a step")
    assert signal.getsignal(signal.SIGUSR1) == before
    leave.set()
    thread.join()
    assert errors == [] and signal.getsignal(signal.SIGUSR1) == before


def test_an_exit_cut_short_leaves_no_request_for_the_next_block():
    """A Ctrl-C inside the outermost exit (after its count went down, before the restore) leaves
    the recording handler installed and the request set: the next block starts clean and restores
    the default rather than the recorder."""
    with STOP_REQUEST:
        os.kill(os.getpid(), signal.SIGUSR1)
        recorder = signal.getsignal(signal.SIGUSR1)
    signal.signal(signal.SIGUSR1, recorder)  # as the cut-short exit left them
    STOP_REQUEST.received = True
    try:
        with STOP_REQUEST:
            assert not STOP_REQUEST.received
            STOP_REQUEST.stop_after("a step")  # nothing asked in this block
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL and not STOP_REQUEST.received
    finally:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
