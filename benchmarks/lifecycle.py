"""A backlog's whole lifecycle against a rate-limited emulator: pull, acknowledge, ship.

The steps are the ones the jobs run (fetch_listings, store_listings and load_orders; then
post_acknowledgements; then a shipment file through queue_file and post_due_updates), with the
client's bucket set to the emulator's. The phases that call the API are timed apart from the
local work between them, so the achieved call rate is the pace the client keeps while it has
calls to make.
"""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb


def run(url: str, consumer_key: str, work_dir: str, burst: int, per_second: float) -> dict:
    """Pull, load, acknowledge and ship every NEW order; returns calls and phase timings."""
    from gdf_pipeline.inbound.acknowledge import pending_acknowledgements, post_acknowledgements
    from gdf_pipeline.inbound.load import load_orders
    from gdf_pipeline.inbound.pull import fetch_listings, next_cancellation_cursor, store_listings
    from gdf_pipeline.outbound.posting import post_due_updates
    from gdf_pipeline.outbound.queue import queue_file
    from gdf_pipeline.resources import GoDataFeedResource
    from gdf_pipeline.warehouse import Warehouse

    work = Path(work_dir)
    warehouse = Warehouse(
        database=str(work / "warehouse.duckdb"), analytics_copy_path=str(work / "copy.duckdb")
    )
    gdf = GoDataFeedResource(
        api_url=url,
        consumer_key=consumer_key,
        rate_limit_burst=burst,
        rate_limit_per_second=per_second,
        state_dir=str(work / "state"),
    )
    phases: dict[str, float] = {}
    calls: dict[str, int] = {}
    throttled = 0

    started = time.perf_counter()
    with gdf.get_client() as client:
        listings = fetch_listings(client, cursor=None)
        calls["pull"], throttled = client.stats.calls, throttled + client.stats.throttled
    phases["pull"] = _lap(started)

    mark = time.perf_counter()
    orders = listings[0].orders
    with warehouse.get_connection() as conn:
        store_listings(
            conn, listings, "bench-lifecycle", next_cancellation_cursor(None, orders, [])
        )
        load_orders(conn, "bench-lifecycle", warehouse.order_number_prefix)
        pending = pending_acknowledgements(conn)
    phases["load"] = _lap(mark)

    mark = time.perf_counter()
    with gdf.get_client() as client:
        outcomes = post_acknowledgements(client, warehouse, pending)
        calls["acknowledge"], throttled = client.stats.calls, throttled + client.stats.throttled
    phases["acknowledge"] = _lap(mark)

    mark = time.perf_counter()
    inbox = work / "inbox"
    now = datetime.now(UTC)
    _write_shipments(inbox / "shipments.csv", [number for _, number in pending], now)
    queued = queue_file(
        warehouse,
        inbox / "shipments.csv",
        inbox_dir=inbox,
        now=now,
        tz=ZoneInfo("UTC"),
        run_id="bench-lifecycle",
    )
    phases["queue"] = _lap(mark)

    mark = time.perf_counter()
    posted = post_due_updates(warehouse, gdf, run_id="bench-lifecycle")
    calls["ship"], throttled = posted["api_calls"], throttled + posted["api_429s"]
    phases["ship"] = _lap(mark)

    with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as conn:
        shipped = conn.execute(
            "SELECT count(*) FROM sync.status_updates WHERE state = 'POSTED'"
        ).fetchone()[0]
    return {
        "orders": len(orders),
        "acknowledged": outcomes["ACKNOWLEDGED"],
        "queued": queued["queued"],
        "shipped": shipped,
        "client_calls": sum(calls.values()),
        "client_429s": throttled,
        "calls": calls,
        "phases": phases,
        "api_seconds": phases["pull"] + phases["acknowledge"] + phases["ship"],
        "seconds": time.perf_counter() - started,
    }


def _lap(mark: float) -> float:
    return time.perf_counter() - mark


def _write_shipments(path: Path, order_numbers: list[str], now: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ship_date = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Order Number", "Carrier", "Tracking Number", "Ship Date"])
        for index, number in enumerate(order_numbers):
            writer.writerow([number, "UPS", f"1Z999AA1{index:010d}", ship_date])
