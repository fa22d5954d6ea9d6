"""Replaying quarantined orders, without SQL: export them, correct them, load them again.

A quarantined order was never acknowledged, so GoDataFeed still lists it as NEW and every
sync meets it again. An operator can either ask GoDataFeed for it once more (after the seller
fixed it at the marketplace) or hand in a corrected copy of its JSON. Either way the order
enters as a REPLAY pull and the next load treats it like a NEW order: it is loaded, numbered,
acknowledged, and its quarantine entry is marked resolved.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import simplejson

from gdf_pipeline.gdf.errors import GoDataFeedError
from gdf_pipeline.inbound.pull import Listing, store_listings

REPLAY = "REPLAY"


class ReplayError(ValueError):
    """A corrected order file cannot be used; the message names the file and the problem."""


def unresolved_quarantine(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, str]]:
    """(quarantine_id, gdf_order_id, reason, raw_json) of every order still quarantined."""
    return conn.execute(
        "SELECT quarantine_id, gdf_order_id, reason, raw_json FROM sync.quarantine "
        "WHERE source = 'order' AND resolved_at IS NULL ORDER BY first_seen_at"
    ).fetchall()


def export_quarantine(conn: duckdb.DuckDBPyConnection, folder: Path) -> list[Path]:
    """Writes each quarantined order's JSON to `folder` for correcting; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for quarantine_id, gdf_order_id, reason, raw_json in unresolved_quarantine(conn):
        name = re.sub(r"[^A-Za-z0-9_-]", "_", gdf_order_id or quarantine_id)[:64]
        path = folder / f"{name}.json"
        order = json.loads(raw_json, parse_float=Decimal)
        document = {"reason": reason, "order": order}
        path.write_text(_dumps(document), encoding="utf-8")
        written.append(path)
    return written


def read_corrected_orders(paths: list[Path]) -> list[dict]:
    """Reads corrected orders: files as written by export (with "order"), an order, or a list."""
    orders = []
    for path in paths:
        try:
            document = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
        except (OSError, UnicodeDecodeError) as error:
            raise ReplayError(f"{path}: cannot be read ({error})") from None
        except json.JSONDecodeError as error:
            raise ReplayError(
                f"{path}: not JSON (line {error.lineno}, column {error.colno}: {error.msg})"
            ) from None
        if isinstance(document, dict) and isinstance(document.get("order"), dict):
            document = document["order"]
        found = document if isinstance(document, list) else [document]
        if not all(isinstance(order, dict) for order in found):
            raise ReplayError(f"{path}: expected an order object or a list of order objects")
        orders.extend(found)
    return orders


def refetch_quarantined(client, quarantined: list[tuple]) -> tuple[list[dict], list[str]]:
    """Asks GoDataFeed again for each quarantined order; returns the orders and the failures."""
    orders, failures = [], []
    for _, gdf_order_id, _, _ in quarantined:
        if not gdf_order_id:
            failures.append("an order without an id cannot be fetched again; correct its file")
            continue
        try:
            orders.append(client.get_order(gdf_order_id))
        except GoDataFeedError as error:
            failures.append(f"{gdf_order_id}: {error}")
    return orders, failures


def stage_replay(conn: duckdb.DuckDBPyConnection, orders: list[dict], run_id: str) -> int:
    """Stores the orders as a REPLAY pull for the next load; returns how many."""
    store_listings(conn, [Listing(REPLAY, orders)], run_id, None)
    return len(orders)


def _dumps(document) -> str:
    # Indented for an editor, money digit for digit.
    return simplejson.dumps(document, use_decimal=True, indent=2, ensure_ascii=False) + "\n"
