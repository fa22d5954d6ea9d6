"""Fixtures shared by the test modules."""

import pytest

from gdf_pipeline.emulator import Emulator


@pytest.fixture
def emulator():
    """A running GoDataFeed emulator on loopback: 60 seeded NEW orders, no rate limit."""
    with Emulator(orders=60, seed=7, rate_burst=0) as running:
        yield running
