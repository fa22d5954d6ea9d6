"""Taking shipments into the ledger: CSV files from the inbox, and new rows of oms.shipments.

A file is read, validated and recorded under one warehouse connection, and its rows, its
rejections and its sync.shipment_files row commit together. Only then does it move out of the
inbox: a crash before the move leaves a file whose hash is already recorded, and the next run
just finishes the move. No HTTP call happens here.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, tzinfo
from pathlib import Path

import duckdb

from gdf_pipeline.faults import crash_point
from gdf_pipeline.outbound import inbox, ledger
from gdf_pipeline.outbound.csv_files import SHIPMENT_COLUMNS, ShipmentFileError, read_shipment_csv
from gdf_pipeline.outbound.validate import lookup_orders, validate_rows

log = logging.getLogger(__name__)

TABLE_BATCH_ROWS = 50_000
# A file's rows wait in DuckDB temp tables until its commit, and DuckDB's own default limit is
# most of the machine's memory. Past this limit it spills them to disk beside the warehouse, so
# the process stays bounded whatever the file's size (without it, a 200 MB file took 1.2 GB).
STAGING_MEMORY_LIMIT = "256MB"

PROCESSED = "PROCESSED"
PARTLY_REJECTED = "PARTLY_REJECTED"
REJECTED = "REJECTED"


def queue_file(
    warehouse,
    path: Path,
    *,
    inbox_dir: Path,
    now: datetime,
    tz: tzinfo,
    run_id: str | None,
    logger=log,
) -> Counter:
    """Reads one shipment file into the ledger and moves it out of the inbox; returns counts."""
    try:
        scan = inbox.scan_file(path)
    except FileNotFoundError:
        logger.info(f"{path.name} is no longer in the inbox; another run took it")
        return Counter()

    with warehouse.get_connection() as conn:
        conn.execute(f"SET memory_limit = '{STAGING_MEMORY_LIMIT}'")
        known = ledger.processed_file(conn, scan.sha256)
        if known is not None:
            settle_known_file(conn, path, known, inbox_dir=inbox_dir, now=now, logger=logger)
            return Counter(files_already_processed=1)

        rows_read, file_error = _stage_file(conn, scan, now=now, tz=tz)
        conn.execute("BEGIN TRANSACTION")
        try:
            if file_error is None:
                counts = ledger.record_staged(
                    conn,
                    source="file",
                    run_id=run_id,
                    now=now,
                    file_hash=scan.sha256,
                    file_name=path.name,
                )
                outcome = PARTLY_REJECTED if counts["rows_rejected"] else PROCESSED
            else:
                ledger.record_file_rejection(conn, scan.sha256, file_error, run_id, now)
                counts, rows_read, outcome = Counter(), 0, REJECTED

            folder = inbox.PROCESSED if outcome == PROCESSED else inbox.REJECTED
            final = inbox.destination(inbox_dir, folder, scan.sha256, path.name, now)
            ledger.record_file(
                conn,
                file_hash=scan.sha256,
                original_name=path.name,
                final_path=str(final),
                outcome=outcome,
                file_error=file_error,
                size_bytes=scan.size,
                rows=rows_read,
                valid=rows_read - counts["rows_rejected"],
                rejected=counts["rows_rejected"],
                duplicates=counts["duplicates"],
                queued=counts["queued"],
                processed_at=now,
                run_id=run_id,
            )
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        crash_point("after_shipment_file_commit")

        inbox.write_errors_file(conn, scan.sha256, inbox.errors_path(final))
    inbox.move(path, final)

    counts.update(
        files=1,
        files_rejected=int(outcome == REJECTED),
        rows_read=rows_read,
        rows_valid=rows_read - counts["rows_rejected"],
    )
    _log_file(logger, path.name, final, outcome, file_error, counts)
    return counts


def settle_known_file(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    known: dict,
    *,
    inbox_dir: Path,
    now: datetime,
    logger=log,
) -> Path | None:
    """Moves a file whose content is already recorded to where that content went; no posting.

    This is either an identical re-drop or a file whose run stopped between its commit and its
    move; the planned path is used when it is still free.
    """
    folder = inbox.PROCESSED if known["outcome"] == PROCESSED else inbox.REJECTED
    planned = Path(known["final_path"])
    if planned.parent != inbox_dir / folder or planned.exists():
        planned = inbox.destination(inbox_dir, folder, known["file_hash"], path.name, now)

    inbox.write_errors_file(conn, known["file_hash"], inbox.errors_path(planned))
    if inbox.move(path, planned):
        logger.info(
            f"{path.name} has the same content as {known['original_name']}, processed at "
            f"{known['processed_at']}; nothing sent again, moved to {folder}/{planned.name}"
        )
        return planned
    return None


def queue_table(
    warehouse,
    *,
    now: datetime,
    tz: tzinfo,
    run_id: str | None,
    logger=log,
    batch_rows: int = TABLE_BATCH_ROWS,
) -> Counter:
    """Takes every oms.shipments row not yet queued into the ledger, a batch per transaction."""
    total = Counter()
    while True:
        with warehouse.get_connection() as conn:
            rows = _unqueued_shipments(conn, batch_rows)
            if rows.empty:
                break
            ledger.start_staging(conn)
            ledger.stage(conn, validate_rows(lookup_orders(conn, rows), now=now, tz=tz))
            conn.execute("BEGIN TRANSACTION")
            try:
                counts = ledger.record_staged(conn, source="table", run_id=run_id, now=now)
                _mark_shipments_queued(conn, now)
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                raise

        counts.update(table_rows=len(rows), rows_read=len(rows))
        counts["rows_valid"] += len(rows) - counts["rows_rejected"]
        total.update(counts)

    if total["table_rows"]:
        logger.info(
            f"oms.shipments: {total['table_rows']} rows taken, {total['queued']} status updates "
            f"queued, {total['rows_rejected']} rows rejected (see oms.shipments.rejected_reason)"
        )
    return total


def _stage_file(conn, scan: inbox.FileScan, *, now: datetime, tz: tzinfo) -> tuple[int, str | None]:
    ledger.start_staging(conn)
    if scan.problem is not None:
        return 0, scan.problem

    rows_read = 0
    try:
        for chunk in read_shipment_csv(scan.path):
            rows_read += len(chunk)
            rows = chunk.rename(columns={"row_number": "row_id"})
            ledger.stage(conn, validate_rows(lookup_orders(conn, rows), now=now, tz=tz))
    except ShipmentFileError as error:
        # All or nothing: a file that stops being CSV half-way is rejected as a whole.
        ledger.start_staging(conn)
        return rows_read, str(error)
    return rows_read, None


def _unqueued_shipments(conn: duckdb.DuckDBPyConnection, limit: int):
    rows = conn.execute(
        """
        SELECT shipment_id AS row_id,
               order_number,
               '' AS gdf_order_id,
               '' AS marketplace_order_id,
               status,
               carrier,
               shipping_method,
               tracking_number,
               strftime(timezone('UTC', ship_date), '%Y-%m-%dT%H:%M:%S.%fZ') AS ship_date
        FROM oms.shipments
        WHERE queued_at IS NULL
        ORDER BY shipment_id
        LIMIT ?
        """,
        [limit],
    ).df()
    for column in SHIPMENT_COLUMNS:
        rows[column] = rows[column].fillna("").astype(str).str.strip()
    return rows


def _mark_shipments_queued(conn: duckdb.DuckDBPyConnection, now: datetime) -> None:
    outcomes = ledger.staged_outcomes(conn)
    conn.register("shipment_outcomes", outcomes)
    try:
        conn.execute(
            """
            UPDATE oms.shipments AS s
            SET queued_at = $now, update_key = o.update_key, rejected_reason = o.reasons
            FROM shipment_outcomes AS o
            WHERE s.shipment_id = o.row_id
            """,
            {"now": now},
        )
    finally:
        conn.unregister("shipment_outcomes")


def _log_file(logger, name: str, final: Path, outcome: str, file_error, counts: Counter) -> None:
    where = f"{final.parent.name}/{final.name}"
    if file_error is not None:
        logger.warning(f"{name} rejected as a whole: {file_error}; moved to {where}")
        return
    message = (
        f"{name}: {counts['rows_read']} rows, {counts['queued']} status updates queued, "
        f"{counts['duplicates']} duplicates, {counts['already_recorded']} already recorded, "
        f"{counts['rows_rejected']} rows rejected; moved to {where}"
    )
    if outcome == PROCESSED:
        logger.info(message)
    else:
        logger.warning(message + f" (reasons in {inbox.errors_path(final).name})")
