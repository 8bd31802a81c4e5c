"""The server process's garbage collector settings (`meerkat.server.tune_gc`, issue 6)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from meerkat.server import GC_THRESHOLD, tune_gc


class _Cyclic:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_gc")
def test_tune_gc_frees_start_up_garbage_and_freezes_what_lives_on() -> None:
    kept = _Cyclic()
    dropped = weakref.ref(_Cyclic())
    assert dropped() is not None  # a cycle: only the collector frees it
    tune_gc()
    assert dropped() is None
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == GC_THRESHOLD
    assert kept.me is kept
