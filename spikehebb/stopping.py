"""Stopping a run or a study on a signal without losing finished work.

- Ctrl-C and SIGTERM stop at once: inside a run's generations :class:`StopSignals` turns both into
  an exception in the main thread, so the workers are closed and the run file keeps every finished
  generation (the one in flight is lost).
- SIGUSR1 (:data:`STOP_AFTER_GENERATION`; a scheduler's advance notice) asks for a stop at the next
  boundary: after the generation in flight inside a run, after the step in flight (an arm or run
  and its tests) in a study. One process-wide record, :data:`STOP_REQUEST`, serves both, so a
  request that lands between a study's steps, or in a run's last generation, is kept for the next
  boundary instead of being lost or killing the process.
"""

from __future__ import annotations

import signal
import threading

from spikehebb import unraisable


def _in_main_thread() -> bool:
    """Whether this is the main thread, the only one Python lets install signal handlers."""
    return threading.current_thread() is threading.main_thread()


#: The signal that stops a run once the generation in flight is stored (None where the platform
#: has no SIGUSR1). Worker processes start with it blocked, so it may go to the whole process
#: group (the processes evaluator's, and a local Ray instance's; not an existing Ray cluster's).
STOP_AFTER_GENERATION: signal.Signals | None = getattr(signal, "SIGUSR1", None)


def stopped_by(signum: int) -> str:
    """How a run's stop is told: "interrupted" (Ctrl-C), "stopped by SIGTERM", "stopped by SIGUSR1
    after the generation in flight"."""
    if signum == signal.SIGINT:
        return "interrupted"
    name = signal.Signals(signum).name
    return f"stopped by {name} after the generation in flight" if signum == STOP_AFTER_GENERATION else f"stopped by {name}"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, so that it unwinds as Ctrl-C does."""

    signum = signal.SIGTERM


class AfterGeneration(KeyboardInterrupt):
    """SIGUSR1, raised once the generation in flight is stored."""

    signum = STOP_AFTER_GENERATION


class StudyInterrupted(KeyboardInterrupt):
    """SIGUSR1 during a study, raised once the step in flight is done (its results cached).

    ``step``: what was finished, e.g. "arm 'gmm' and its tests". ``what``, ``signum`` and
    ``exit_code`` (138 on Linux) as :class:`~spikehebb.train.TrainingInterrupted`'s."""

    def __init__(self, step: str):
        self.signum = STOP_AFTER_GENERATION
        self.what = f"stopped by {signal.Signals(self.signum).name} after {step}"
        self.exit_code = 128 + int(self.signum)
        super().__init__(self.what)


class StopRequest:
    """Whether SIGUSR1 has asked this process to stop at its next boundary (:data:`STOP_REQUEST`).

    ``with STOP_REQUEST:`` records SIGUSR1 instead of dying of it; the blocks nest (a study's, then
    each run's generations inside it) and the outermost installs the handler, restores the
    previous one and forgets the request when it exits. :meth:`stop_after` is a study's boundary.
    Outside the main thread, where Python cannot install handlers, a block does nothing."""

    def __init__(self):
        self.received = False
        self._depth = 0  # blocks entered in the main thread
        self._previous: object = signal.SIG_DFL

    def _record(self, signum, frame) -> None:
        self.received = True

    def stop_after(self, step: str, last: bool = False) -> None:
        """Raise :class:`StudyInterrupted` if SIGUSR1 came and ``step``, just finished, was not the
        ``last`` (after the last one the study just ends)."""
        if self.received and not last:
            raise StudyInterrupted(step)

    def __enter__(self) -> StopRequest:
        if STOP_AFTER_GENERATION is None or not _in_main_thread():
            return self
        if self._depth == 0:
            self.received = False
            previous = signal.signal(STOP_AFTER_GENERATION, self._record)
            # None: a handler installed outside Python; the default is the nearest we can restore.
            # Our own: an exit cut short left it (it would record for good)
            self._previous = signal.SIG_DFL if previous is None or previous == self._record else previous
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        if STOP_AFTER_GENERATION is None or not _in_main_thread():
            return
        self._depth -= 1
        if self._depth == 0:
            try:
                signal.signal(STOP_AFTER_GENERATION, self._previous)
            finally:
                self.received = False


#: The one record of this process.
STOP_REQUEST = StopRequest()


class StopSignals:
    """While a run's generations go, Ctrl-C raises KeyboardInterrupt and SIGTERM raises
    :class:`Terminated` in the main thread (Python's default for SIGTERM is to die at once: the
    workers were left to notice their parent was gone and multiprocessing warned of leaked
    semaphores). An exception raised by a handler can be swallowed where the signal happens to
    land (a weakref callback, a ``__del__``), so the signal is also recorded and :meth:`check`,
    called after each generation, raises it then. SIGUSR1 is only recorded (in
    :data:`STOP_REQUEST`): :meth:`check` raises :class:`AfterGeneration` for it unless the run is
    done, when the request stays for an enclosing study's next boundary (Ctrl-C and SIGTERM still
    stop at once). Outside the main thread, where Python cannot install handlers, nothing changes."""

    def __init__(self):
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame):
        self.received = signum
        self.check()

    def check(self, done: bool = False) -> None:
        """Raise what was received; ``done``: the last generation is stored (SIGUSR1 asks no more)."""
        if self.received == signal.SIGTERM:
            raise Terminated()
        if self.received is not None:
            raise KeyboardInterrupt()
        if STOP_REQUEST.received and not done:
            raise AfterGeneration()

    def _unraisable(self, info) -> bool:
        """Where the handler's exception was swallowed (a weakref callback, a ``__del__``), Python
        prints "Exception ignored"; :meth:`check` raises it after the generation, so say nothing."""
        return isinstance(info.exc_value, (Terminated, KeyboardInterrupt)) and self.received is not None

    def __enter__(self):
        if _in_main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
            unraisable.hold(self._unraisable)
        STOP_REQUEST.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        STOP_REQUEST.__exit__(*exc)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        unraisable.release(self._unraisable)
