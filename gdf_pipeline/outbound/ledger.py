"""The status update ledger (sync.status_updates): recording updates once, claiming, outcomes.

Every function here takes an open warehouse connection and does one short piece of SQL work;
none calls GoDataFeed. Recording is keyed by update_key with ON CONFLICT DO NOTHING, so an
update that arrives twice (a re-dropped file, the same row in a file and in oms.shipments, a
run repeated after a crash) is recorded once. Posting claims a few rows at a time, so two
overlapping runs never post the same update; a claim left by a crashed run expires.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from gdf_pipeline.outbound.validate import REJECTED_COLUMNS, UPDATE_COLUMNS, Validated

PENDING = "PENDING"
WAITING_ACK = "WAITING_ACK"
POSTED = "POSTED"
CONFLICT = "CONFLICT"
REJECTED = "REJECTED"
FAILED = "FAILED"
RETRYABLE_STATES = (PENDING, WAITING_ACK, FAILED)

CLAIM_FOR = timedelta(minutes=15)
RETRY_BACKOFF_FIRST = timedelta(minutes=1)
RETRY_BACKOFF_MAX = timedelta(hours=1)

_STAGED_UPDATES = """
CREATE OR REPLACE TEMP TABLE staged_updates (
    row_id BIGINT, order_number VARCHAR, gdf_order_id VARCHAR, status VARCHAR,
    carrier VARCHAR, shipping_method VARCHAR, tracking_number VARCHAR, ship_date TIMESTAMPTZ,
    ship_date_sent VARCHAR, ship_date_input VARCHAR, payload VARCHAR, update_key VARCHAR,
    ack_status VARCHAR
)
"""
_STAGED_REJECTS = """
CREATE OR REPLACE TEMP TABLE staged_rejects (
    row_id BIGINT, column_name VARCHAR, value VARCHAR, reason VARCHAR
)
"""


@dataclass(frozen=True)
class ClaimedUpdate:
    """A status update this run is about to post."""

    update_key: str
    gdf_order_id: str
    order_number: str
    status: str
    carrier: str
    shipping_method: str
    tracking_number: str
    ship_date_sent: str | None
    attempts: int


@dataclass(frozen=True)
class Outcome:
    """What GoDataFeed answered to one status update, as the ledger records it."""

    update_key: str
    state: str
    error: str | None = None
    gdf_status: str | None = None
    gdf_current: dict | None = None
    next_attempt_at: datetime | None = None


def start_staging(conn: duckdb.DuckDBPyConnection) -> None:
    """Creates (or empties) this connection's staging tables for one batch of rows."""
    conn.execute(_STAGED_UPDATES)
    conn.execute(_STAGED_REJECTS)


def stage(conn: duckdb.DuckDBPyConnection, validated: Validated) -> None:
    """Adds a validated chunk to the staging tables."""
    if len(validated.updates):
        conn.register("validated_updates", validated.updates[UPDATE_COLUMNS])
        conn.execute("INSERT INTO staged_updates SELECT * FROM validated_updates")
        conn.unregister("validated_updates")
    if len(validated.rejected):
        conn.register("validated_rejects", validated.rejected[REJECTED_COLUMNS])
        conn.execute(
            'INSERT INTO staged_rejects SELECT row_id, "column", value, reason '
            "FROM validated_rejects"
        )
        conn.unregister("validated_rejects")


def record_staged(
    conn: duckdb.DuckDBPyConnection,
    *,
    source: str,
    run_id: str | None,
    now: datetime,
    file_hash: str | None = None,
    file_name: str | None = None,
) -> Counter:
    """Takes the staged batch into the ledger; run inside the caller's transaction.

    Rows with the same update collapse onto the first (duplicates). A later row giving one
    order a different update is rejected: GoDataFeed keeps one shipment per order. Updates
    the ledger already holds (same key, or same order and same input) are not recorded again.
    Returns the counts: rows_rejected, duplicates, already_recorded, queued.
    """
    _classify_staged(conn)
    _reject_in_batch_conflicts(conn, source)

    queued = conn.execute(
        """
        INSERT INTO sync.status_updates (
            update_key, gdf_order_id, order_number, status, carrier, shipping_method,
            tracking_number, ship_date, ship_date_sent, ship_date_input, payload, source,
            source_file_hash, source_file_name, source_row, shipment_id, state, last_error,
            created_at, updated_at, queued_run_id
        )
        SELECT s.update_key, s.gdf_order_id, s.order_number, s.status, s.carrier,
               s.shipping_method, s.tracking_number, s.ship_date, s.ship_date_sent,
               s.ship_date_input, CAST(s.payload AS JSON), $source, $file_hash, $file_name,
               CASE WHEN $source = 'file' THEN s.row_id END,
               CASE WHEN $source = 'table' THEN s.row_id END,
               CASE WHEN s.ack_status = 'PENDING' THEN 'WAITING_ACK' ELSE 'PENDING' END,
               CASE WHEN s.ack_status = 'PENDING'
                    THEN 'waiting for the acknowledgement of order ' || s.order_number END,
               $now, $now, $run_id
        FROM staged_updates s
        JOIN staged_outcomes o USING (row_id)
        WHERE o.outcome = 'queued'
        ORDER BY s.row_id
        ON CONFLICT DO NOTHING
        RETURNING update_key
        """,
        {
            "source": source,
            "file_hash": file_hash,
            "file_name": file_name,
            "run_id": run_id,
            "now": now,
        },
    ).fetchall()

    conn.execute(
        """
        INSERT INTO sync.rejected_rows (
            source, file_hash, shipment_id, row_number, column_name, value, reason,
            rejected_at, run_id
        )
        SELECT $source, $file_hash,
               CASE WHEN $source = 'table' THEN row_id END,
               CASE WHEN $source = 'file' THEN row_id END,
               column_name, value, reason, $now, $run_id
        FROM staged_rejects
        ORDER BY row_id
        """,
        {"source": source, "file_hash": file_hash, "run_id": run_id, "now": now},
    )

    counts = Counter(
        dict(
            conn.execute(
                "SELECT outcome, count(*) FROM staged_outcomes GROUP BY outcome"
            ).fetchall()
        )
    )
    rejected = conn.execute("SELECT count(DISTINCT row_id) FROM staged_rejects").fetchone()[0]
    return Counter(
        rows_rejected=rejected,
        duplicates=counts["duplicate"],
        already_recorded=counts["already_recorded"],
        queued=len(queued),
    )


def record_file_rejection(
    conn: duckdb.DuckDBPyConnection, file_hash: str, reason: str, run_id: str | None, now: datetime
) -> None:
    """Records why a whole file was rejected, as its one line in sync.rejected_rows."""
    conn.execute(
        """
        INSERT INTO sync.rejected_rows (source, file_hash, reason, rejected_at, run_id)
        VALUES ('file', ?, ?, ?, ?)
        """,
        [file_hash, reason, now, run_id],
    )


def staged_outcomes(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per staged row: the ledger key it maps to (if any) and the reasons it was rejected."""
    return conn.execute(
        """
        SELECT coalesce(o.row_id, r.row_id) AS row_id, o.ledger_key AS update_key, r.reasons
        FROM staged_outcomes o
        FULL JOIN (
            SELECT row_id, string_agg(coalesce(nullif(column_name, '') || ': ', '') || reason,
                                      '; ' ORDER BY column_name) AS reasons
            FROM staged_rejects GROUP BY row_id
        ) r USING (row_id)
        """
    ).df()


def processed_file(conn: duckdb.DuckDBPyConnection, file_hash: str) -> dict | None:
    """The sync.shipment_files row of a file content already processed, or None."""
    found = conn.execute(
        "SELECT * FROM sync.shipment_files WHERE file_hash = ?", [file_hash]
    ).fetchdf()
    return None if found.empty else found.iloc[0].to_dict()


def processed_hashes(conn: duckdb.DuckDBPyConnection, hashes: list[str]) -> set[str]:
    """Which of the given content hashes sync.shipment_files already holds."""
    if not hashes:
        return set()
    found = conn.execute(
        "SELECT file_hash FROM sync.shipment_files WHERE list_contains(?, file_hash)", [hashes]
    ).fetchall()
    return {row[0] for row in found}


def record_file(conn: duckdb.DuckDBPyConnection, **row) -> None:
    """Adds the sync.shipment_files row of a file just processed."""
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    conn.execute(
        f"INSERT INTO sync.shipment_files ({columns}) VALUES ({marks})", list(row.values())
    )


def mark_waiting(conn: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """Moves PENDING updates of orders whose acknowledgement is still PENDING to WAITING_ACK."""
    return len(
        conn.execute(
            """
            UPDATE sync.status_updates AS u
            SET state = 'WAITING_ACK', updated_at = $now, next_attempt_at = NULL,
                last_error = 'waiting for the acknowledgement of order ' || u.order_number
            FROM sync.acknowledgements AS a
            WHERE a.gdf_order_id = u.gdf_order_id AND a.status = 'PENDING'
              AND u.state = 'PENDING'
            RETURNING u.update_key
            """,
            {"now": now},
        ).fetchall()
    )


def claim_due(
    conn: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    now: datetime,
    limit: int,
    ignore_backoff: bool = False,
) -> list[ClaimedUpdate]:
    """Claims up to limit updates due for posting, oldest first, for this run only.

    Due: PENDING, or WAITING_ACK / FAILED past next_attempt_at (at once with ignore_backoff),
    whose order's acknowledgement is not PENDING, not claimed by a live run, and not yet tried
    by this run.
    """
    claimed = conn.execute(
        f"""
        UPDATE sync.status_updates
        SET claimed_by = $run_id, claimed_until = $until
        WHERE update_key IN (
            {_DUE_SQL}
            ORDER BY u.created_at, u.source_row NULLS LAST, u.shipment_id NULLS LAST,
                     u.update_key
            LIMIT $limit
        )
        RETURNING update_key, gdf_order_id, order_number, status, carrier, shipping_method,
                  tracking_number, ship_date_sent, attempts, created_at, source_row,
                  shipment_id
        """,
        {
            "run_id": run_id,
            "until": now + CLAIM_FOR,
            "now": now,
            "limit": limit,
            "ignore_backoff": ignore_backoff,
        },
    ).fetchall()
    claimed.sort(key=lambda row: (row[9], row[10] or 0, row[11] or 0, row[0]))
    return [
        ClaimedUpdate(
            update_key=row[0],
            gdf_order_id=row[1],
            order_number=row[2],
            status=row[3],
            carrier=row[4] or "",
            shipping_method=row[5] or "",
            tracking_number=row[6] or "",
            ship_date_sent=row[7],
            attempts=row[8],
        )
        for row in claimed
    ]


def count_due(
    conn: duckdb.DuckDBPyConnection, now: datetime, *, ignore_backoff: bool = False
) -> int:
    """How many status updates a run would post now (the table sensor's trigger)."""
    return conn.execute(
        f"SELECT count(*) FROM ({_DUE_SQL})",
        {"now": now, "run_id": "", "ignore_backoff": ignore_backoff},
    ).fetchone()[0]


def count_waiting(conn: duckdb.DuckDBPyConnection) -> int:
    """How many status updates wait for their order's acknowledgement."""
    return conn.execute(
        "SELECT count(*) FROM sync.status_updates WHERE state = 'WAITING_ACK'"
    ).fetchone()[0]


def count_unqueued_shipments(conn: duckdb.DuckDBPyConnection) -> int:
    """How many oms.shipments rows wait to be taken into the ledger."""
    return conn.execute("SELECT count(*) FROM oms.shipments WHERE queued_at IS NULL").fetchone()[0]


def record_outcomes(
    conn: duckdb.DuckDBPyConnection, outcomes: list[Outcome], *, run_id: str, now: datetime
) -> None:
    """Records GoDataFeed's answers, and puts what it accepted into oms.orders, in one go."""
    if not outcomes:
        return
    frame = pd.DataFrame(
        {
            "update_key": [o.update_key for o in outcomes],
            "state": [o.state for o in outcomes],
            "error": [o.error for o in outcomes],
            "gdf_status": [o.gdf_status for o in outcomes],
            "gdf_current": [
                json.dumps(o.gdf_current) if o.gdf_current is not None else None for o in outcomes
            ],
            "next_attempt_at": pd.to_datetime([o.next_attempt_at for o in outcomes], utc=True),
        }
    )
    conn.register("outcomes", frame)
    try:
        conn.execute("BEGIN TRANSACTION")
        conn.execute(
            """
            UPDATE sync.status_updates AS u
            SET state = o.state,
                attempts = u.attempts + 1,
                last_error = o.error,
                gdf_status = coalesce(o.gdf_status, u.gdf_status),
                gdf_current = CAST(o.gdf_current AS JSON),
                posted_at = CASE WHEN o.state = 'POSTED' THEN $now ELSE u.posted_at END,
                next_attempt_at = o.next_attempt_at,
                claimed_by = NULL,
                claimed_until = NULL,
                last_run_id = $run_id,
                updated_at = $now
            FROM outcomes AS o
            WHERE u.update_key = o.update_key
            """,
            {"now": now, "run_id": run_id},
        )
        _apply_to_oms_orders(conn, now)
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.unregister("outcomes")


def release_claims(conn: duckdb.DuckDBPyConnection, keys: list[str], run_id: str) -> None:
    """Gives back claims this run took but did not post (it is stopping early)."""
    if keys:
        conn.execute(
            """
            UPDATE sync.status_updates SET claimed_by = NULL, claimed_until = NULL
            WHERE claimed_by = ? AND list_contains(?, update_key)
            """,
            [run_id, keys],
        )


def claiming_runs(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The runs that hold claims on status updates now."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT claimed_by FROM sync.status_updates WHERE claimed_by IS NOT NULL"
        ).fetchall()
    ]


def release_runs_claims(conn: duckdb.DuckDBPyConnection, run_ids: list[str]) -> int:
    """Gives back every claim of the given runs (they died); returns how many."""
    if not run_ids:
        return 0
    return len(
        conn.execute(
            """
            UPDATE sync.status_updates SET claimed_by = NULL, claimed_until = NULL
            WHERE list_contains(?, claimed_by)
            RETURNING update_key
            """,
            [run_ids],
        ).fetchall()
    )


def retry_at(attempts: int, now: datetime) -> datetime:
    """When a failed update is tried again: 1, 2, 4 ... minutes after, at most an hour."""
    backoff = RETRY_BACKOFF_FIRST * (2 ** max(attempts - 1, 0))
    return now + min(backoff, RETRY_BACKOFF_MAX)


# Updates due for posting. A run never tries one update twice (last_run_id), so a FAILED row
# retried at once with ignore_backoff cannot loop within the run.
_DUE_SQL = """
SELECT u.update_key
FROM sync.status_updates AS u
LEFT JOIN sync.acknowledgements AS a ON a.gdf_order_id = u.gdf_order_id
WHERE u.state IN ('PENDING', 'WAITING_ACK', 'FAILED')
  AND coalesce(a.status, '') <> 'PENDING'
  AND (u.claimed_until IS NULL OR u.claimed_until < $now)
  AND ($ignore_backoff OR u.next_attempt_at IS NULL OR u.next_attempt_at <= $now)
  AND u.last_run_id IS DISTINCT FROM $run_id
"""


def _classify_staged(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        """
        CREATE OR REPLACE TEMP TABLE staged_outcomes AS
        WITH ranked AS (
            SELECT *, row_number() OVER (PARTITION BY update_key ORDER BY row_id) AS copy_no
            FROM staged_updates
        ),
        firsts AS (
            SELECT *,
                   first_value(update_key) OVER by_order AS order_first_key,
                   first_value(row_id) OVER by_order AS order_first_row
            FROM ranked
            WHERE copy_no = 1
            WINDOW by_order AS (PARTITION BY gdf_order_id ORDER BY row_id)
        ),
        known AS (
            SELECT f.update_key, coalesce(same_key.update_key, min(same_input.update_key))
                   AS ledger_key
            FROM firsts f
            LEFT JOIN sync.status_updates same_key ON same_key.update_key = f.update_key
            LEFT JOIN sync.status_updates same_input
                ON same_input.gdf_order_id = f.gdf_order_id
               AND same_input.status = f.status
               AND same_input.carrier IS NOT DISTINCT FROM f.carrier
               AND same_input.shipping_method IS NOT DISTINCT FROM f.shipping_method
               AND same_input.tracking_number IS NOT DISTINCT FROM f.tracking_number
               AND same_input.ship_date_input IS NOT DISTINCT FROM f.ship_date_input
            GROUP BY f.update_key, same_key.update_key
        )
        SELECT r.row_id,
               CASE WHEN f.order_first_key <> f.update_key THEN 'conflict'
                    WHEN r.copy_no > 1 THEN 'duplicate'
                    WHEN k.ledger_key IS NOT NULL THEN 'already_recorded'
                    ELSE 'queued' END AS outcome,
               CASE WHEN f.order_first_key <> f.update_key THEN NULL
                    ELSE coalesce(k.ledger_key, r.update_key) END AS ledger_key,
               f.order_first_row
        FROM ranked r
        JOIN firsts f USING (update_key)
        JOIN known k USING (update_key)
        """
    )


def _reject_in_batch_conflicts(conn: duckdb.DuckDBPyConnection, source: str) -> None:
    where = "row" if source == "file" else "oms.shipments row"
    conn.execute(
        f"""
        INSERT INTO staged_rejects
        SELECT s.row_id, 'order_number', s.order_number,
               'order ' || s.order_number || ' already has a different status update in {where} '
               || o.order_first_row || '; GoDataFeed keeps the first shipment of an order'
        FROM staged_outcomes o JOIN staged_updates s USING (row_id)
        WHERE o.outcome = 'conflict'
        """
    )


def _apply_to_oms_orders(conn: duckdb.DuckDBPyConnection, now: datetime) -> None:
    # Only what GoDataFeed accepted reaches the OMS; one accepted update per order at most.
    accepted = """
        SELECT u.gdf_order_id, u.status, u.carrier, u.tracking_number, u.ship_date
        FROM outcomes o JOIN sync.status_updates u USING (update_key)
        WHERE o.state = 'POSTED' AND u.status = '{status}'
        QUALIFY row_number() OVER (PARTITION BY u.gdf_order_id ORDER BY u.created_at) = 1
    """
    conn.execute(
        f"""
        UPDATE oms.orders AS o
        SET status = 'SHIPPED', carrier = a.carrier,
            tracking_number = nullif(a.tracking_number, ''), shipped_at = a.ship_date,
            updated_at = $now
        FROM ({accepted.format(status="SHIPPED")}) AS a
        WHERE o.gdf_order_id = a.gdf_order_id
        """,
        {"now": now},
    )
    conn.execute(
        f"""
        UPDATE oms.orders AS o
        SET status = 'CANCELLED', cancelled_at = coalesce(o.cancelled_at, $now), updated_at = $now
        FROM ({accepted.format(status="CANCELLED")}) AS a
        WHERE o.gdf_order_id = a.gdf_order_id
        """,
        {"now": now},
    )
