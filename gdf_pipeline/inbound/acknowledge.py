"""Posting acknowledgements: each loaded order is acknowledged with its OMS order number."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

import duckdb

from gdf_pipeline.faults import crash_point
from gdf_pipeline.gdf import contract
from gdf_pipeline.gdf.errors import (
    AuthorizationError,
    BadRequestError,
    OrderNotFoundError,
    TransientError,
    TransitionConflictError,
)
from gdf_pipeline.warehouse.rows import register_columns

log = logging.getLogger(__name__)

# Outcomes are written back in batches: a crash loses at most this many records, and those
# orders are acknowledged again with the same number, which GoDataFeed answers 200 unchanged.
FLUSH_EVERY = 50


@dataclass(frozen=True)
class Outcome:
    gdf_order_id: str
    status: str  # ACKNOWLEDGED, CONFLICT, REJECTED, CANCELLED, or PENDING to retry next run
    error: str | None = None


def pending_acknowledgements(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(gdf_order_id, order_number) of every acknowledgement not yet accepted, oldest first."""
    return conn.execute(
        "SELECT gdf_order_id, order_number FROM sync.acknowledgements "
        "WHERE status = 'PENDING' ORDER BY order_number"
    ).fetchall()


def acknowledge_one(client, gdf_order_id: str, order_number: str) -> Outcome:
    """Posts one acknowledgement and says what became of it; raises only AuthorizationError."""
    try:
        client.acknowledge(gdf_order_id, order_number)
        return Outcome(gdf_order_id, "ACKNOWLEDGED")
    except TransitionConflictError as error:
        if error.current_status == contract.CANCELLED:
            return Outcome(gdf_order_id, "CANCELLED", "cancelled at GoDataFeed before acknowledged")
        current = (error.current_order or {}).get(contract.SELLER_ORDER_NUMBER_FIELD)
        return Outcome(
            gdf_order_id,
            "CONFLICT",
            f"GoDataFeed has the order {error.current_status or 'in another state'}"
            + (f" with number {current!r}" if current else "")
            + f", not {order_number!r}: {error.api_message or error}",
        )
    except (BadRequestError, OrderNotFoundError) as error:
        return Outcome(gdf_order_id, "REJECTED", str(error))
    except TransientError as error:
        return Outcome(gdf_order_id, "PENDING", str(error))


def record_outcomes(conn: duckdb.DuckDBPyConnection, outcomes: list[Outcome]) -> None:
    """Writes outcomes to sync.acknowledgements, and cancellations to oms.orders, at once."""
    if not outcomes:
        return
    register_columns(
        conn,
        "ack_outcomes",
        {
            "gdf_order_id": [o.gdf_order_id for o in outcomes],
            "status": [o.status for o in outcomes],
            "error": [o.error for o in outcomes],
        },
    )
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            """
            UPDATE sync.acknowledgements AS a SET
                status = o.status,
                attempts = a.attempts + 1,
                last_error = o.error,
                acknowledged_at = CASE WHEN o.status = 'ACKNOWLEDGED'
                    THEN current_timestamp ELSE a.acknowledged_at END,
                updated_at = current_timestamp
            FROM ack_outcomes o
            WHERE a.gdf_order_id = o.gdf_order_id AND a.status = 'PENDING'
            """
        )
        conn.execute(
            """
            UPDATE oms.orders SET status = 'CANCELLED', cancelled_at = current_timestamp,
                updated_at = current_timestamp
            FROM ack_outcomes o
            WHERE oms.orders.gdf_order_id = o.gdf_order_id AND o.status = 'CANCELLED'
              AND oms.orders.status = 'OPEN'
            """
        )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.unregister("ack_outcomes")


def post_acknowledgements(client, warehouse, pending: list[tuple[str, str]], on_progress=None):
    """Acknowledges every pending order; returns a Counter of outcome statuses.

    No connection is held while posting: a shipment run may write in between. An
    AuthorizationError stops the loop after the outcomes so far are recorded.
    """
    counts: Counter[str] = Counter()
    batch: list[Outcome] = []
    try:
        for done, (gdf_order_id, order_number) in enumerate(pending, start=1):
            outcome = acknowledge_one(client, gdf_order_id, order_number)
            crash_point("acknowledgement")
            counts[outcome.status] += 1
            batch.append(outcome)
            if outcome.status not in ("ACKNOWLEDGED", "PENDING"):
                log.warning("Order %s: %s (%s)", order_number, outcome.status, outcome.error)
            if len(batch) >= FLUSH_EVERY:
                _flush(warehouse, batch)
                if on_progress:
                    on_progress(done, len(pending))
    except AuthorizationError:
        _flush(warehouse, batch)
        raise
    _flush(warehouse, batch)
    return counts


def _flush(warehouse, batch: list[Outcome]) -> None:
    if batch:
        with warehouse.get_connection() as conn:
            record_outcomes(conn, batch)
        batch.clear()
