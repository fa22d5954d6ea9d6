"""`gdf-pipeline sync` end to end, as a real process against the emulator over loopback:
every order lands once and is acknowledged with its OMS number, exact money, no 429, a second
sync does nothing, and a SIGKILL after the pull, after the load or in the middle of the
acknowledgements loses and duplicates nothing."""

from __future__ import annotations

import signal
import subprocess
from collections import defaultdict
from decimal import Decimal

import duckdb
import pytest
from cli_runs import run_cli

from gdf_pipeline.emulator import Emulator


def run_sync(emulator: Emulator, data_dir, **extra) -> subprocess.CompletedProcess:
    return run_cli(emulator, data_dir, "sync", **extra)


def oms_orders(data_dir) -> dict[str, str]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as conn:
        return dict(conn.execute("SELECT gdf_order_id, order_number FROM oms.orders").fetchall())


def assert_every_order_once_and_acknowledged(emulator: Emulator, data_dir) -> None:
    numbers = oms_orders(data_dir)
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as conn:
        (rows, distinct) = conn.execute(
            "SELECT count(*), count(DISTINCT gdf_order_id) FROM oms.orders"
        ).fetchone()
    assert rows == distinct
    source = emulator.all_orders()
    assert set(numbers) == {order["id"] for order in source}
    for order in source:
        assert order["status"] == "ACKNOWLEDGED", order["id"]
        assert order["sellerOrderNumber"] == numbers[order["id"]]


@pytest.fixture
def emulator_237():
    with Emulator(orders=237, seed=11, rate_burst=10, rate_per_second=20).start() as emulator:
        yield emulator


def test_sync_loads_and_acknowledges_every_order_once(emulator_237, tmp_path):
    result = run_sync(emulator_237, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "succeeded" in result.stdout
    assert_every_order_once_and_acknowledged(emulator_237, tmp_path)
    assert emulator_237.stats.rate_limited == 0

    expected = defaultdict(Decimal)
    for order in emulator_237.all_orders():
        expected[order["currency"]] += order["orderTotal"]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        loaded = dict(
            conn.execute("SELECT currency, sum(order_total) FROM oms.orders GROUP BY 1").fetchall()
        )
    assert loaded == dict(expected)

    acknowledgements_before = sum(emulator_237.stats.acknowledge_calls.values())
    second = run_sync(emulator_237, tmp_path)

    assert second.returncode == 0, second.stdout + second.stderr
    assert sum(emulator_237.stats.acknowledge_calls.values()) == acknowledgements_before
    assert len(oms_orders(tmp_path)) == 237
    assert emulator_237.stats.rate_limited == 0


@pytest.mark.parametrize(
    "crash_at",
    [
        pytest.param("after_pull", id="after-pull"),
        pytest.param("after_load", id="after-load"),
        pytest.param("acknowledgement:7", id="mid-acknowledgements"),
    ],
)
def test_sigkill_at_a_step_boundary_loses_and_duplicates_nothing(tmp_path, crash_at):
    with Emulator(orders=40, seed=5, rate_burst=10, rate_per_second=20).start() as emulator:
        crashed = run_sync(emulator, tmp_path, GDF_CRASH_AT=crash_at)
        assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
        first_numbers = oms_orders(tmp_path) if crash_at != "after_pull" else {}

        rerun = run_sync(emulator, tmp_path)

        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert_every_order_once_and_acknowledged(emulator, tmp_path)
        numbers = oms_orders(tmp_path)
        assert {k: numbers[k] for k in first_numbers} == first_numbers
        assert all(count <= 2 for count in emulator.stats.acknowledge_calls.values())
