"""Pausing Python's cyclic garbage collector around work that builds many lasting objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block, then give it back its state.

    A large listing is a few dozen containers per order, all kept until they are stored, so
    every full pass of the collector walked all the orders read so far: reading 100,000 orders
    took 9 s instead of 5.5 s, and storing them 4 s instead of 1.5 s. Parsed JSON holds no
    reference cycles, so the pause leaves nothing uncollected: reference counting frees it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
