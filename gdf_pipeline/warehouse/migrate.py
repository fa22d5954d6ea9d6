"""Versioned, repeatable DDL: each file under migrations/ runs once, in order, in a transaction."""

from __future__ import annotations

import logging
from importlib import resources

import duckdb

log = logging.getLogger(__name__)

_LEDGER = """
CREATE SCHEMA IF NOT EXISTS sync;
CREATE TABLE IF NOT EXISTS sync.schema_migrations (
    version INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
"""


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every migration shipped with the package, oldest first."""
    folder = resources.files("gdf_pipeline.warehouse") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Applies the migrations this database has not seen yet; returns their file names."""
    conn.execute(_LEDGER)
    applied = {
        row[0] for row in conn.execute("SELECT version FROM sync.schema_migrations").fetchall()
    }

    ran = []
    for version, name, sql in available_migrations():
        if version in applied:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(sql)
            conn.execute(
                "INSERT INTO sync.schema_migrations (version, name) VALUES (?, ?)", [version, name]
            )
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        log.info("Applied warehouse migration %s", name)
        ran.append(name)
    return ran
