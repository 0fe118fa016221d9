"""The services' collector settings: young collections rare, what is loaded frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from servicekit.memory import YOUNG_THRESHOLD, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_makes_young_collections_rare() -> None:
    _, middle, old = gc.get_threshold()
    tune_gc()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
    assert gc.get_freeze_count() > 0
