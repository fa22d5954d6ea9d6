"""Scanning everything the pipeline wrote for the consumer key and the access tokens.

Raw bytes are not enough: DuckDB compresses strings in its blocks, and Dagster stores run and
job snapshots zlib-compressed in SQLite. So every file is searched three ways: its raw bytes
(text, percent-encoded and base64 forms of each secret); a DuckDB file, in addition, through SQL
over every column of every table; a SQLite file through every value of every table, with
compressed blobs inflated first.
"""

from __future__ import annotations

import base64
import contextlib
import re
import sqlite3
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import duckdb

from gdf_pipeline.emulator import Emulator

_SQLITE_MAGIC = b"SQLite format 3\x00"
_DUCKDB_MAGIC = b"DUCK"
_READ_BYTES = 1 << 22


@dataclass
class Scan:
    """What was read and what was found: one line per secret found, naming file and place."""

    files: int = 0
    bytes: int = 0
    duckdb_files: int = 0
    sqlite_files: int = 0
    leaks: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # searched as bytes only


def emulator_secrets(emulator: Emulator) -> dict[str, str]:
    """Label -> secret: the consumer key and every token the emulator has issued."""
    # The emulator has no public list of its tokens; reading its store is fine in a test.
    tokens = sorted(emulator._store._tokens)
    return {"consumer key": emulator.consumer_key, **{f"token {t[:4]}…": t for t in tokens}}


def scan(roots: list[Path], secrets: dict[str, str]) -> Scan:
    """Searches every regular file under the roots (symlinks are not followed)."""
    result = Scan()
    needles = _needles(secrets)
    for root in roots:
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in paths:
            if path.is_symlink() or not path.is_file():
                continue
            _scan_file(path, needles, secrets, result)
    return result


def _needles(secrets: dict[str, str]) -> list[tuple[str, bytes]]:
    needles = []
    for label, secret in secrets.items():
        forms = {
            secret,
            quote(secret, safe=""),
            quote_plus(secret, safe=""),
            base64.b64encode(secret.encode()).decode(),
        }
        needles += [(label, form.encode()) for form in forms]
    return needles


def _scan_file(path: Path, needles, secrets: dict[str, str], result: Scan) -> None:
    result.files += 1
    overlap = max(len(needle) for _, needle in needles)
    head = b""
    with open(path, "rb") as handle:
        tail = b""
        while block := handle.read(_READ_BYTES):
            if not head:
                head = block[:16]
            result.bytes += len(block)
            window = tail + block
            for label, needle in needles:
                if needle in window:
                    result.leaks.append(f"{path}: the {label} in its bytes")
            tail = window[-overlap:]

    if head.startswith(_SQLITE_MAGIC):
        result.sqlite_files += 1
        _scan_sqlite(path, secrets, result)
    elif head[8:12] == _DUCKDB_MAGIC:
        result.duckdb_files += 1
        _scan_duckdb(path, secrets, result)


def _scan_sqlite(path: Path, secrets: dict[str, str], result: Scan) -> None:
    # immutable: no locking and no recovery, which a file left by a killed process would
    # otherwise need (its -wal or -journal beside it is scanned as bytes anyway).
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as error:
        result.unreadable.append(f"{path}: {error}")
        return
    try:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    for text in _texts(value):
                        for label, secret in secrets.items():
                            if secret in text:
                                result.leaks.append(f"{path}: the {label} in table {table}")
    except sqlite3.Error as error:
        result.unreadable.append(f"{path}: {error}")
    finally:
        conn.close()


def _texts(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes):
        texts = [value.decode("utf-8", "replace")]
        with contextlib.suppress(zlib.error):
            texts.append(zlib.decompress(value).decode("utf-8", "replace"))
        return texts
    return []


def _scan_duckdb(path: Path, secrets: dict[str, str], result: Scan) -> None:
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as error:
        result.unreadable.append(f"{path}: {error}")
        return
    try:
        columns = conn.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND NOT internal"
        ).fetchall()
        pattern = "|".join(re.escape(secret) for secret in secrets.values())
        for schema, table, column in columns:
            found = conn.execute(
                f'SELECT count(*) FROM "{schema}"."{table}" '
                f'WHERE regexp_matches(CAST("{column}" AS VARCHAR), ?)',
                [pattern],
            ).fetchone()[0]
            if found:
                result.leaks.append(f"{path}: a secret in {schema}.{table}.{column} ({found} rows)")
    finally:
        conn.close()
