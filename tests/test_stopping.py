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
