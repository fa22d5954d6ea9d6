"""Warehouses of a given size for the local-work measurements, and the steps timed on them.

Large sizes are not pulled over HTTP: the raw orders of one pull are copied, and repeated with
fresh ids (an md5 of the old id and the copy's number, 32 hex characters like GoDataFeed's) as
often as the size needs. Every copy is a valid, distinct order, so the load does the same work
per order as on pulled data.
"""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

RUN_ID = "bench-history"


def copy_raw(source: str, target: str, orders: int) -> dict:
    """A new warehouse whose raw schema holds `orders` orders, as one NEW pull not yet loaded."""
    from gdf_pipeline.warehouse.migrate import migrate

    Path(target).unlink(missing_ok=True)
    conn = duckdb.connect(target)
    migrate(conn)
    conn.execute("ATTACH ? AS source (READ_ONLY)", [source])
    available = conn.execute("SELECT count(*) FROM source.raw.orders").fetchone()[0]
    copies = -(-orders // available)
    conn.execute("BEGIN TRANSACTION")
    conn.execute(
        "INSERT INTO raw.pulls (pull_id, run_id, listing, pulled_at, order_count, api_calls) "
        "VALUES ('bench-pull', ?, 'NEW', current_timestamp, ?, 0)",
        [RUN_ID, orders],
    )
    conn.execute(
        """
        INSERT INTO raw.orders
        WITH ids AS (
            SELECT r.gdf_order_id, r.raw_json::VARCHAR AS raw_text, r.numbers_typed, copy,
                CASE WHEN copy = 0 THEN r.gdf_order_id
                     ELSE md5(r.gdf_order_id || ':' || copy) END AS new_id
            FROM source.raw.orders r, range(?) AS copies(copy)
            ORDER BY copy, r.gdf_order_id
            LIMIT ?
        )
        SELECT 'bench-pull', new_id, 'NEW', replace(raw_text, gdf_order_id, new_id)::JSON,
            current_timestamp, ?, numbers_typed
        FROM ids
        """,
        [copies, orders, RUN_ID],
    )
    conn.execute("COMMIT")
    conn.execute("DETACH source")
    conn.execute("CHECKPOINT")
    count = conn.execute("SELECT count(*) FROM raw.orders").fetchone()[0]
    conn.close()
    return {"orders": count}


def transform_load(database: str) -> dict:
    """Time load_orders over every raw order not yet loaded (raw -> oms, one transaction)."""
    from gdf_pipeline.inbound.load import load_orders

    conn = duckdb.connect(database)
    started = time.perf_counter()
    counts = load_orders(conn, RUN_ID, "SO-")
    seconds = time.perf_counter() - started
    conn.execute("CHECKPOINT")
    conn.close()
    return {"orders": counts["loaded"], "lines": counts["lines_loaded"], "seconds": seconds}


# The tables whose rows a load writes, each with its rows as the load left them.
_LOADED_TABLES = ("oms.orders", "oms.order_lines", "sync.acknowledgements")


def write_floor(source: str, target: str) -> dict:
    """Time writing a load's own output again: the floor under any transform and load.

    The rows that transform_load wrote into `source` are held in temporary tables, then
    inserted into the empty tables of a new warehouse and committed, with the settings the load
    uses. No JSON is read and nothing is computed: what this costs, the load cannot go below.
    """
    from gdf_pipeline.inbound.load import LOAD_MEMORY_LIMIT
    from gdf_pipeline.warehouse.migrate import migrate

    Path(target).unlink(missing_ok=True)
    conn = duckdb.connect(target)
    migrate(conn)
    conn.execute(f"SET memory_limit = '{LOAD_MEMORY_LIMIT}'")
    conn.execute("SET preserve_insertion_order = false")
    conn.execute("ATTACH ? AS source (READ_ONLY)", [source])
    for table in _LOADED_TABLES:
        conn.execute(f"CREATE TEMP TABLE {_held(table)} AS SELECT * FROM source.{table}")
    conn.execute("DETACH source")

    started = time.perf_counter()
    conn.execute("BEGIN TRANSACTION")
    for table in _LOADED_TABLES:
        conn.execute(f"INSERT INTO {table} SELECT * FROM {_held(table)}")
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started

    orders, lines = (
        conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in _LOADED_TABLES[:2]
    )
    conn.close()
    return {"orders": orders, "lines": lines, "seconds": seconds}


def _held(table: str) -> str:
    return "held_" + table.replace(".", "_")


def acknowledge_all(database: str) -> dict:
    """Mark every acknowledgement accepted, as after a sync that posted them all."""
    conn = duckdb.connect(database)
    conn.execute(
        "UPDATE sync.acknowledgements SET status = 'ACKNOWLEDGED', attempts = 1, "
        "acknowledged_at = current_timestamp, updated_at = current_timestamp "
        "WHERE status = 'PENDING'"
    )
    conn.execute("CHECKPOINT")
    count = conn.execute("SELECT count(*) FROM oms.orders").fetchone()[0]
    conn.close()
    return {"orders": count}


def queue_shipments(database: str, work_dir: str, rows: int) -> dict:
    """Write a shipment CSV for `rows` acknowledged orders, then time queue_file on it."""
    from zoneinfo import ZoneInfo

    from gdf_pipeline.outbound.queue import queue_file
    from gdf_pipeline.warehouse import Warehouse

    inbox_dir = Path(work_dir) / "inbox"
    inbox_dir.mkdir(parents=True, exist_ok=True)
    path = inbox_dir / "shipments.csv"
    now = datetime.now(UTC)
    with duckdb.connect(database, read_only=True) as conn:
        numbers = conn.execute(
            "SELECT order_number FROM oms.orders ORDER BY order_number LIMIT ?", [rows]
        ).fetchall()
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["Order Number", "Carrier", "Shipping Method", "Tracking Number", "Ship Date"]
        )
        ship_date = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        for index, (number,) in enumerate(numbers):
            writer.writerow([number, "UPS", "Ground", f"1Z999AA1{index:010d}", ship_date])

    warehouse = Warehouse(database=database, analytics_copy_path=str(Path(work_dir) / "copy.db"))
    started = time.perf_counter()
    counts = queue_file(
        warehouse, path, inbox_dir=inbox_dir, now=now, tz=ZoneInfo("UTC"), run_id="bench-ship"
    )
    seconds = time.perf_counter() - started
    return {
        "rows": counts["rows_read"],
        "queued": counts["queued"],
        "rejected": counts["rows_rejected"],
        "seconds": seconds,
    }
