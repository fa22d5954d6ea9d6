"""The benchmark harness at tiny sizes: its measurements run and the table has every row.

No speed is asserted: benchmarks are commands that print figures (`make bench`), not tests.
dlt (an optional extra) and the Dagster-run measurements are stood in for by fixed results,
so the test stays fast and runs without the bench extra installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gdf_pipeline.emulator import Emulator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import datasets, lifecycle, pull_load  # noqa: E402
from benchmarks.harness import WorkerFailed, run_worker  # noqa: E402
from benchmarks.run import MODES  # noqa: E402
from benchmarks.table import figures, format_table  # noqa: E402


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("bench")
    results: dict = {}
    with Emulator(orders=12, seed=5, rate_burst=50, rate_per_second=100.0) as emulator:
        results["lifecycle"] = lifecycle.run(
            emulator.url, emulator.consumer_key, str(work / "lifecycle"), 50, 100.0
        )
        results["lifecycle"]["emulator_requests"] = emulator.stats.requests
        results["lifecycle"]["emulator_429s"] = emulator.stats.rate_limited

    with Emulator(orders=40, seed=5, rate_burst=0) as emulator:
        address = {"url": emulator.url, "consumer_key": emulator.consumer_key}
        ours = pull_load.ours(database=str(work / "ours.duckdb"), **address)
        naive = pull_load.naive(database=str(work / "naive.duckdb"), max_orders=5, **address)
    for result in (ours, naive):
        result["peak_rss_bytes"] = 1
    dlt = {"orders": 40, "lines": 80, "seconds": 10.0, "peak_rss_bytes": 1}
    results["pull_load"] = {"ours": ours, "dlt": dlt, "naive": naive}

    history = str(work / "history.duckdb")
    # In a child process, as the harness runs every measurement: its peak memory is read.
    copied = run_worker("copy_raw", source=str(work / "ours.duckdb"), target=history, orders=100)
    transform = datasets.transform_load(history)
    transform["peak_rss_bytes"] = copied["peak_rss_bytes"]
    results["transform"] = {100: transform}
    floor = datasets.write_floor(history, str(work / "floor.duckdb"))
    floor["peak_rss_bytes"] = 1
    results["write_floor"] = {100: floor}
    datasets.acknowledge_all(history)
    shipments = datasets.queue_shipments(history, str(work / "ship"), rows=30)
    shipments["peak_rss_bytes"] = 1
    results["shipments"] = shipments

    idle = {"steps": {"raw_orders": 0.1}, "seconds": 0.1, "dagster_steps": {"raw_orders": 0.5}}
    results["idle_sync"] = {10: idle, 100: idle}
    results["dagster"] = {"seconds": 9.0, "history": 100}
    results["copied"] = copied
    return results


def test_each_measurement_runs_on_its_data(measured):
    lifecycle_result = measured["lifecycle"]
    assert lifecycle_result["orders"] == lifecycle_result["shipped"] == 12
    assert lifecycle_result["emulator_429s"] == 0
    assert measured["pull_load"]["ours"]["orders"] == 40
    assert measured["pull_load"]["naive"]["orders"] == 5
    assert measured["copied"]["orders"] == 100
    assert measured["copied"]["peak_rss_bytes"] > 10 * 1024 * 1024
    assert measured["transform"][100]["orders"] == 100
    assert measured["write_floor"][100]["orders"] == 100
    assert measured["write_floor"][100]["lines"] == measured["transform"][100]["lines"]
    assert measured["shipments"]["queued"] == 30


def test_the_table_has_every_row_beside_a_target(measured):
    table = format_table(figures(MODES["quick"], measured), title="smoke")

    numbers = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    assert numbers[1:] == ["1a", "1b", "1c", "2a", "2b", "2c", "3", "3w", "4", "5", "6"]
    assert "x dlt" in table
    assert "PASS" in table or "FAIL" in table


def test_a_failing_worker_reports_its_error(tmp_path):
    with pytest.raises(WorkerFailed, match="copy_raw exited"):
        run_worker("copy_raw", source=str(tmp_path / "missing.duckdb"), target="", orders=1)
