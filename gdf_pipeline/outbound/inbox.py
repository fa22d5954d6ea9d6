"""The shipments drop folder: which files are ready, their content hash, and where they go after.

A file is ready when it is a regular `*.csv` file directly in the inbox, not hidden and not a
symlink. Writers write `name.csv.part` (or any name not ending in .csv) and rename it when
complete, so a half-written file is never read. After its rows are committed to the ledger a
file moves to processed/ (every row taken) or rejected/ (some row or the whole file rejected)
under a unique name, with `<name>.errors.csv` beside it listing each rejected row.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

PROCESSED = "processed"
REJECTED = "rejected"
_READ_BYTES = 1 << 20
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

# Spreadsheets run a cell starting with one of these as a formula; the errors file quotes the
# input back, so such cells get a leading apostrophe there.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class FileScan:
    """A file's content hash and size, and why it is not UTF-8 text when it is not."""

    path: Path
    sha256: str
    size: int
    mtime_ns: int
    problem: str | None


def ready_files(inbox: Path) -> list[Path]:
    """The inbox's ready files, oldest first (then by name)."""
    if not inbox.is_dir():
        return []
    found = []
    with os.scandir(inbox) as entries:
        for entry in entries:
            if is_ready_name(entry.name) and entry.is_file(follow_symlinks=False):
                found.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name))
    return [inbox / name for _, name in sorted(found)]


def unread_entries(inbox: Path) -> list[tuple[str, str]]:
    """Entries named like a ready file that are never read, each with what it is instead.

    Whoever put a symlink or a folder named `*.csv` here meant it to be read; a run names each
    such entry, so that it is not silently ignored for ever.
    """
    if not inbox.is_dir():
        return []
    found = []
    with os.scandir(inbox) as entries:
        for entry in entries:
            if not is_ready_name(entry.name):
                continue
            if entry.is_symlink():
                found.append((entry.name, "a symbolic link"))
            elif entry.is_dir(follow_symlinks=False):
                found.append((entry.name, "a folder"))
            elif not entry.is_file(follow_symlinks=False):
                found.append((entry.name, "not a regular file"))
    return sorted(found)


def is_ready_name(name: str) -> bool:
    """Whether a bare file name is one the pipeline reads: `*.csv`, not hidden, no path."""
    return (
        name.lower().endswith(".csv")
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
    )


def scan_file(path: Path) -> FileScan:
    """Hashes the file and checks in the same pass that it is UTF-8 text without NUL bytes."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    problem = None
    offset = 0

    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        while block := handle.read(_READ_BYTES):
            digest.update(block)
            if problem is None:
                problem = _text_problem(decoder, block, offset)
            offset += len(block)
    if problem is None:
        problem = _text_problem(decoder, b"", offset, final=True)

    return FileScan(path, digest.hexdigest(), offset, stat.st_mtime_ns, problem)


def _text_problem(decoder, block: bytes, offset: int, final: bool = False) -> str | None:
    if offset == 0 and block.startswith(_UTF16_BOMS):
        return "the file is UTF-16 text; save it as CSV UTF-8 and drop it again"
    nul = block.find(b"\x00")
    if nul >= 0:
        return f"the file has a NUL byte at byte {offset + nul}; it is not a text CSV file"
    try:
        decoder.decode(block, final)
    except UnicodeDecodeError as error:
        return (
            f"the file is not UTF-8 text (byte {offset + error.start} cannot be read); "
            "save it as CSV UTF-8 and drop it again"
        )
    return None


def destination(inbox: Path, folder: str, file_hash: str, name: str, now: datetime) -> Path:
    """A new, unique path for a finished file: <folder>/<UTC time>-<short hash>-<name>."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = inbox / folder / f"{stamp}-{file_hash[:8]}-{name}"
    candidate, counter = base, 1
    while candidate.exists() or errors_path(candidate).exists():
        counter += 1
        candidate = base.with_name(f"{stamp}-{file_hash[:8]}-{counter}-{name}")
    return candidate


def errors_path(final_path: Path) -> Path:
    """The errors file beside a finished file: shipments.csv -> shipments.errors.csv."""
    stem = (
        final_path.name[: -len(".csv")]
        if final_path.name.lower().endswith(".csv")
        else final_path.name
    )
    return final_path.with_name(f"{stem}.errors.csv")


def write_errors_file(conn: duckdb.DuckDBPyConnection, file_hash: str, target: Path) -> int:
    """Writes the file's rejected rows from sync.rejected_rows; returns how many lines."""
    count = conn.execute(
        "SELECT count(*) FROM sync.rejected_rows WHERE source = 'file' AND file_hash = ?",
        [file_hash],
    ).fetchone()[0]
    if not count:
        return 0

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    if not all(char in "0123456789abcdef" for char in file_hash):
        raise ValueError(f"not a sha256 hex digest: {file_hash!r}")
    conn.execute(
        f"""
        COPY (
            SELECT row_number AS "row", {_guarded("column_name")} AS "column",
                   {_guarded("value")} AS value, {_guarded("reason")} AS reason
            FROM sync.rejected_rows
            WHERE source = 'file' AND file_hash = '{file_hash}'
            ORDER BY row_number NULLS FIRST, column_name
        ) TO '{_sql_path(partial)}' (FORMAT csv, HEADER true)
        """
    )
    os.replace(partial, target)
    return count


def move(path: Path, target: Path) -> bool:
    """Moves a finished file into place; False when it was already gone (another run moved it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return False
    return True


def _guarded(column: str) -> str:
    prefixes = ", ".join(f"'{prefix}'" for prefix in FORMULA_PREFIXES)
    return f"CASE WHEN left({column}, 1) IN ({prefixes}) THEN '''' || {column} ELSE {column} END"


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
