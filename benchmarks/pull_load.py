"""The three contenders that pull the emulator's NEW orders and load them into DuckDB.

- `ours`: the pipeline's own steps, fetch_listings and store_listings into raw, then
  load_orders on to the OMS tables (what the raw_orders and oms_orders assets run).
- `dlt`: dlt's `rest_api` source over the same pages, loaded into DuckDB by dlt, which
  flattens each order and puts its items in a child table. dlt parses money as floats and
  checks nothing, so it does less than the pipeline; it is the peer to beat, not a twin.
- `naive`: the same pages parsed with Decimal money and written one INSERT per order and per
  line into the OMS tables, the way a first draft often does it.

Each runs in its own process (see harness.py) against an emulator already warmed up, so no
contender pays for the emulator encoding an order for the first time.
"""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import requests

PAGE_SIZE = 250


def ours(url: str, consumer_key: str, database: str) -> dict:
    """Pull every NEW order with the pipeline's client, store it in raw, load it into oms."""
    from gdf_pipeline.gdf.client import GoDataFeedClient
    from gdf_pipeline.inbound.load import load_orders
    from gdf_pipeline.inbound.pull import fetch_listings, next_cancellation_cursor, store_listings
    from gdf_pipeline.warehouse.migrate import migrate

    conn = duckdb.connect(database)
    migrate(conn)

    started = time.perf_counter()
    with GoDataFeedClient(url, consumer_key, page_size=PAGE_SIZE) as client:
        listings = fetch_listings(client, cursor=None)
        calls = client.stats.calls
    pulled = time.perf_counter()
    orders = listings[0].orders
    cursor = next_cancellation_cursor(None, orders, [])
    store_listings(conn, listings, "bench-pull-load", cursor)
    stored = time.perf_counter()
    counts = load_orders(conn, "bench-pull-load", "SO-")
    loaded = time.perf_counter()
    conn.close()
    return {
        "orders": counts["loaded"],
        "seconds": loaded - started,
        "api_calls": calls,
        "phases": {"pull": pulled - started, "store": stored - pulled, "load": loaded - stored},
    }


def dlt(url: str, consumer_key: str, database: str, work_dir: str, pages: int) -> dict:
    """Load the same pages with dlt's rest_api source into a DuckDB file."""
    # dlt reads these before it is imported: no telemetry (no network), state in work_dir.
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ["DLT_DATA_DIR"] = str(Path(work_dir) / "dlt_data")
    import dlt as dlt_lib
    from dlt.sources.rest_api import rest_api_source

    started = time.perf_counter()
    token = _token(requests.Session(), url, consumer_key)
    source = rest_api_source(
        {
            "client": {
                "base_url": url + "/",
                "paginator": {
                    "type": "page_number",
                    "base_page": 1,
                    "page_param": "page",
                    # totalCount counts orders, not pages: stop after the last full page.
                    "total_path": None,
                    "maximum_page": pages + 1,
                },
            },
            "resources": [
                {
                    "name": "orders",
                    "endpoint": {
                        "path": f"v1/{token}/orders",
                        "params": {"status": "NEW", "pageSize": PAGE_SIZE},
                        "data_selector": "orders",
                    },
                }
            ],
        }
    )
    pipeline = dlt_lib.pipeline(
        pipeline_name="gdf_bench",
        pipelines_dir=str(Path(work_dir) / "dlt_pipelines"),
        destination=dlt_lib.destinations.duckdb(database),
        dataset_name="gdf",
    )
    pipeline.run(source, loader_file_format="parquet")
    seconds = time.perf_counter() - started

    with duckdb.connect(database, read_only=True) as conn:
        orders = conn.execute("SELECT count(*) FROM gdf.orders").fetchone()[0]
        lines = conn.execute("SELECT count(*) FROM gdf.orders__items").fetchone()[0]
    return {"orders": orders, "lines": lines, "seconds": seconds}


def naive(url: str, consumer_key: str, database: str, max_orders: int) -> dict:
    """Pull page after page and INSERT each order and each line on its own (to max_orders)."""
    from gdf_pipeline.warehouse.migrate import migrate

    conn = duckdb.connect(database)
    migrate(conn)
    session = requests.Session()

    started = time.perf_counter()
    token = _token(session, url, consumer_key)
    loaded = 0
    page = 1
    while loaded < max_orders:
        answer = session.get(
            f"{url}/v1/{token}/orders",
            params={"status": "NEW", "page": page, "pageSize": PAGE_SIZE},
            timeout=60,
        )
        orders = json.loads(answer.content, parse_float=Decimal)["orders"]
        if not orders:
            break
        conn.execute("BEGIN TRANSACTION")
        for order in orders[: max_orders - loaded]:
            loaded += 1
            _insert_order(conn, order, loaded)
        conn.execute("COMMIT")
        page += 1
    seconds = time.perf_counter() - started
    conn.close()
    return {"orders": loaded, "seconds": seconds}


def _token(session: requests.Session, url: str, consumer_key: str) -> str:
    answer = session.get(f"{url}/v1/authorization", params={"consumerKey": consumer_key})
    answer.raise_for_status()
    return answer.json()["token"]


_ORDER_INSERT = """
INSERT INTO oms.orders (order_number, order_seq, gdf_order_id, store_id, marketplace,
    marketplace_order_id, status, order_date, imported_at, gdf_modified_at, currency, subtotal,
    shipping_total, tax_total, discount_total, order_total, totals_consistent, shipping_method,
    payment_method, customer_name, customer_email, customer_phone, ship_name, ship_address1,
    ship_address2, ship_city, ship_state, ship_postal_code, ship_country, loaded_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, 'OPEN', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
    ?, ?, current_timestamp, current_timestamp)
"""
_LINE_INSERT = """
INSERT INTO oms.order_lines (order_number, line_number, gdf_item_id, sku, marketplace_item_id,
    title, quantity, unit_price, line_subtotal, tax_amount, shipping_amount, discount_amount)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def _insert_order(conn: duckdb.DuckDBPyConnection, order: dict, seq: int) -> None:
    number = f"SO-{seq:08d}"
    items = order.get("items") or []
    lines_total = sum(item["quantity"] * item["unitPrice"] for item in items)
    consistent = order["subtotal"] == lines_total and order["orderTotal"] == (
        order["subtotal"] + order["shippingTotal"] + order["taxTotal"] - order["discountTotal"]
    )
    customer = order.get("customer") or {}
    ship = order.get("shippingAddress") or {}
    conn.execute(
        _ORDER_INSERT,
        [
            number,
            seq,
            order["id"],
            order.get("storeId"),
            order["marketplace"],
            order.get("marketplaceOrderId"),
            order["orderDate"],
            order.get("importedAt"),
            order.get("modifiedAt"),
            order["currency"],
            order["subtotal"],
            order["shippingTotal"],
            order["taxTotal"],
            order["discountTotal"],
            order["orderTotal"],
            consistent,
            order.get("shippingMethod"),
            order.get("paymentMethod"),
            customer.get("name"),
            customer.get("email"),
            customer.get("phone"),
            ship.get("name"),
            ship.get("address1"),
            ship.get("address2"),
            ship.get("city"),
            ship.get("state"),
            ship.get("postalCode"),
            ship.get("country"),
        ],
    )
    for line_number, item in enumerate(items, start=1):
        conn.execute(
            _LINE_INSERT,
            [
                number,
                line_number,
                item.get("itemId"),
                item.get("sku"),
                item.get("marketplaceItemId"),
                item.get("title"),
                item["quantity"],
                item["unitPrice"],
                item["quantity"] * item["unitPrice"],
                item.get("taxAmount") or 0,
                item.get("shippingAmount") or 0,
                item.get("discountAmount") or 0,
            ],
        )
