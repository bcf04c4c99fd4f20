"""A served part collects garbage less often than Python's default, with what it built at startup frozen."""

from __future__ import annotations

import gc

from publicmesh.runtime import serve


def test_a_part_collects_its_youngest_objects_less_often_and_freezes_its_startup():
    before = gc.get_threshold()
    try:
        serve.tune_gc()
        assert gc.get_threshold()[0] == serve.GC_YOUNG > before[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
