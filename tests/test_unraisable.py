"""The one unraisable hook the store's transactions and a run's signal handling share."""

import sys
from types import SimpleNamespace

import pytest

from spikehebb import unraisable
from spikehebb.stopping import StopSignals, Terminated


@pytest.fixture
def seen(monkeypatch):
    """What reached the hook in place before any filter (stands in for Python's printer)."""
    got = []
    monkeypatch.setattr(sys, "unraisablehook", got.append)
    return got


def info(exc):
    return SimpleNamespace(exc_value=exc, object=None)


def test_filters_are_asked_latest_first_and_the_rest_goes_to_the_earlier_hook(seen):
    asked = []
    first = lambda i: asked.append("first") or isinstance(i.exc_value, KeyError)  # noqa: E731
    second = lambda i: asked.append("second") or isinstance(i.exc_value, ValueError)  # noqa: E731
    unraisable.hold(first)
    unraisable.hold(second)
    sys.unraisablehook(info(ValueError()))
    assert asked == ["second"] and seen == []
    sys.unraisablehook(info(KeyError()))
    assert asked == ["second", "second", "first"] and seen == []
    other = info(OSError())
    sys.unraisablehook(other)
    assert seen == [other]
    unraisable.release(first)  # out of order
    sys.unraisablehook(key := info(KeyError()))
    assert seen == [other, key]
    unraisable.release(second)
    assert unraisable.held() == () and sys.unraisablehook == seen.append
    unraisable.release(second)  # twice: nothing more


def test_a_hook_someone_else_installs_meanwhile_is_left_alone_and_nothing_loops(seen):
    """A framework installs its own hook while a filter is held, one that hands on to the hook it
    replaced (ours): holding another filter then took that hook as 'the hook before', so every
    unraisable went ours -> theirs -> ours ... until RecursionError, for good."""
    theirs = []
    previous = sys.unraisablehook

    def framework(info):
        theirs.append(info)
        previous(info)

    unraisable.hold(keep := (lambda i: isinstance(i.exc_value, KeyError)))
    assert sys.unraisablehook is unraisable._hook
    previous = sys.unraisablehook
    sys.unraisablehook = framework
    unraisable.hold(drop := (lambda i: False))
    assert sys.unraisablehook is framework  # left in place
    sys.unraisablehook(taken := info(KeyError()))
    sys.unraisablehook(passed := info(OSError()))
    assert theirs == [taken, passed] and seen == [passed]  # through ours to the original, once
    unraisable.release(keep)
    unraisable.release(drop)
    assert sys.unraisablehook is framework  # not ours to take away
    sys.unraisablehook(late := info(OSError()))
    assert seen == [passed, late]
    sys.unraisablehook = seen.append
    unraisable.hold(keep)  # the original comes back as 'before' once nothing is held
    sys.unraisablehook(info(KeyError()))
    unraisable.release(keep)
    assert sys.unraisablehook == seen.append and len(seen) == 2


def test_a_run_drops_only_its_own_signal_exception_while_it_is_active(seen):
    with StopSignals() as stop:
        sys.unraisablehook(quiet := info(Terminated()))
        assert seen == [quiet]  # no signal received yet: not ours
        stop.received = 15
        sys.unraisablehook(info(Terminated()))
        sys.unraisablehook(info(KeyboardInterrupt()))
        assert seen == [quiet]
        sys.unraisablehook(other := info(OSError()))
        assert seen == [quiet, other]
    assert unraisable.held() == () and sys.unraisablehook == seen.append
