"""One ``sys.unraisablehook`` for the filters spikehebb holds for a while.

Python prints "Exception ignored in ..." for an exception it cannot raise (one in a weakref
callback or a ``__del__``). Two parts of spikehebb take some of those for themselves while they
are active: an on-disk store transaction remembers a full disk met when h5py closes a dataset
(:mod:`spikehebb.store.transaction`), and a run's signal handling drops the Ctrl-C/SIGTERM
exception its handler raised there, since it raises it again after the generation
(:mod:`spikehebb.stopping`). Each adds a filter here and removes it when done, in any order;
while any filter is held, this module's hook asks them, the latest first, and passes what none
takes to the hook that was in place before it.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

#: A filter: takes the hook's argument, returns True when it has dealt with it.
Filter = Callable[[Any], bool]

_held: list[Filter] = []
_before = sys.unraisablehook


def _hook(info: Any) -> None:
    for taken in reversed(_held):
        if taken(info):
            return
    _before(info)


def hold(filter_: Filter) -> None:
    """Add ``filter_``. The first one held installs this module's hook (what was there before it
    gets what no filter takes). A hook someone installs while filters are held is left in place
    (it may hand on to this one); the hook from before the first filter is never lost."""
    global _before
    if not _held and sys.unraisablehook is not _hook:
        _before = sys.unraisablehook
        sys.unraisablehook = _hook
    _held.append(filter_)


def release(filter_: Filter) -> None:
    """Remove ``filter_`` (nothing if it is not held); the last one out puts the earlier hook
    back, unless someone else has replaced this module's hook since."""
    if filter_ in _held:
        _held.remove(filter_)
    if not _held and sys.unraisablehook is _hook:
        sys.unraisablehook = _before


def held() -> tuple[Filter, ...]:
    """The filters held now, the first added first."""
    return tuple(_held)
