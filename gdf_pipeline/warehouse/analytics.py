"""The analytics copy: a read-only DuckDB file for analysts, replaced atomically after each run.

DuckDB lets one process write a database file, and a reader of that file can block a run or
be refused while one writes. Analysts therefore never open the warehouse: they open a copy of
its oms and sync schemas and analytics views, written beside it under a temporary name and
renamed over the previous copy. A rename is atomic, and a reader that still has the previous
copy open keeps reading it undisturbed until it reconnects.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb

PUBLISHED_SCHEMAS = ("oms", "sync", "analytics")
FINGERPRINT_CURSOR = "analytics_copy_fingerprint"

# Cheap to compute even on a large warehouse (counts and maxima read from column statistics
# and a scan of one column each); it changes whenever a run changed something analysts see.
_FINGERPRINT_SQL = """
SELECT concat_ws('|',
    (SELECT count(*) || '/' || coalesce(max(updated_at)::VARCHAR, '') FROM oms.orders),
    (SELECT count(*) || '/' || coalesce(max(updated_at)::VARCHAR, '') FROM sync.acknowledgements),
    (SELECT count(*) || '/' || coalesce(max(updated_at)::VARCHAR, '') FROM sync.status_updates),
    (SELECT count(*) || '/' || coalesce(max(last_seen_at)::VARCHAR, '') FROM sync.quarantine),
    (SELECT count(*) FROM sync.rejected_rows),
    (SELECT count(*) FROM sync.shipment_files),
    (SELECT count(*) FROM oms.shipments),
    (SELECT max(version) FROM sync.schema_migrations))
"""


# TODO: copy only what changed since the last copy; a whole copy takes about 20 s at 1M orders.
# It can go when the copy is kept as Parquet per table and partition, replaced piecewise.
def publish_analytics_copy(
    conn: duckdb.DuckDBPyConnection, target: Path, force: bool = False
) -> dict:
    """Writes the copy when anything changed since the last one; returns what it did.

    Call it on a connection from `Warehouse.get_connection`: under its writer lock no other
    process is writing a copy, so any scratch copy found beside the target belongs to a run
    that died while writing it, and is removed (it holds the customers' data too).
    """
    started = time.monotonic()
    for stale in target.parent.glob(f".{target.name}.*.tmp*"):
        stale.unlink(missing_ok=True)
    fingerprint = conn.execute(_FINGERPRINT_SQL).fetchone()[0]
    row = conn.execute(
        "SELECT value FROM sync.cursors WHERE name = ?", [FINGERPRINT_CURSOR]
    ).fetchone()
    if not force and target.exists() and row and row[0] == fingerprint:
        return {"published": False, "tables": 0, "seconds": time.monotonic() - started}

    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    scratch.unlink(missing_ok=True)
    tables = _write_copy(conn, scratch)
    os.replace(scratch, target)

    conn.execute(
        "INSERT OR REPLACE INTO sync.cursors (name, value, updated_at) "
        "VALUES (?, ?, current_timestamp)",
        [FINGERPRINT_CURSOR, fingerprint],
    )
    return {"published": True, "tables": tables, "seconds": time.monotonic() - started}


def _write_copy(conn: duckdb.DuckDBPyConnection, scratch: Path) -> int:
    source = conn.execute("SELECT current_database()").fetchone()[0]
    schemas = ", ".join(f"'{name}'" for name in PUBLISHED_SCHEMAS)
    tables = conn.execute(
        f"SELECT schema_name, table_name FROM duckdb_tables() "
        f"WHERE database_name = ? AND schema_name IN ({schemas}) ORDER BY ALL",
        [source],
    ).fetchall()
    views = conn.execute(
        f"SELECT sql FROM duckdb_views() WHERE database_name = ? AND NOT internal "
        f"AND schema_name IN ({schemas}) ORDER BY schema_name, view_name",
        [source],
    ).fetchall()

    conn.execute("ATTACH ? AS publishing_copy", [str(scratch)])
    try:
        for schema in PUBLISHED_SCHEMAS:
            conn.execute(f'CREATE SCHEMA publishing_copy."{schema}"')
        for schema, table in tables:
            conn.execute(
                f'CREATE TABLE publishing_copy."{schema}"."{table}" AS '
                f'SELECT * FROM "{source}"."{schema}"."{table}"'
            )
        # Views are created from inside the copy, so that their table names resolve there.
        conn.execute("USE publishing_copy")
        try:
            _create_views(conn, [sql for (sql,) in views])
        finally:
            conn.execute(f'USE "{source}"')
    finally:
        conn.execute("DETACH publishing_copy")
    return len(tables)


def _create_views(conn: duckdb.DuckDBPyConnection, statements: list[str]) -> None:
    # Views may read other views: retry those whose dependencies are not there yet.
    remaining = statements
    while remaining:
        failed = []
        for sql in remaining:
            try:
                conn.execute(sql)
            except duckdb.CatalogException:
                failed.append(sql)
        if len(failed) == len(remaining):
            conn.execute(failed[0])  # raises the real error
        remaining = failed
