"""The Dagster resource for the warehouse: DuckDBResource plus a cross-process writer lock.

DuckDB lets one process at a time open a file for writing. A scheduled sync, a shipment run
and an operator's command can overlap, so every connection is taken under an advisory file
lock beside the database and held only while that step reads or writes; API calls happen with
no connection open. The lock makes overlapping runs queue for a few milliseconds instead of
failing on DuckDB's own lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from gdf_pipeline.warehouse.migrate import migrate

log = logging.getLogger(__name__)

# Paths already migrated by this process: migrations run once per process, not per connection.
_migrated: set[str] = set()


class WarehouseLockTimeout(RuntimeError):
    """Another process held the warehouse longer than the configured wait."""


class Warehouse(DuckDBResource):
    """The pipeline's DuckDB file (raw, oms and sync schemas), one writer at a time."""

    lock_timeout_seconds: float = Field(
        default=600.0, description="How long a step waits for another writer before failing."
    )
    analytics_copy_path: str = Field(
        description="The read-only copy for analysts, published after each run."
    )
    order_number_prefix: str = Field(
        default="SO-", description="Prefix of the OMS order numbers sent in acknowledgements."
    )

    @property
    def lock_path(self) -> Path:
        return Path(self.database).with_suffix(".lock")

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yields a migrated read-write connection, holding the writer lock until it closes."""
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(self.lock_path, self.lock_timeout_seconds):
            conn = duckdb.connect(self.database, config=dict(self.connection_config))
            try:
                key = os.path.realpath(self.database)
                if key not in _migrated:
                    migrate(conn)
                    _migrated.add(key)
                yield conn
            finally:
                conn.close()

    @contextmanager
    def read_connection(
        self, timeout_seconds: float | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yields a read-only connection under the writer lock (no run writes meanwhile)."""
        if not Path(self.database).exists():
            raise FileNotFoundError(
                f"There is no warehouse at {self.database} yet; run `gdf-pipeline sync` first."
            )
        timeout = self.lock_timeout_seconds if timeout_seconds is None else timeout_seconds
        with _exclusive_lock(self.lock_path, timeout):
            conn = duckdb.connect(self.database, read_only=True)
            try:
                yield conn
            finally:
                conn.close()


@contextmanager
def _exclusive_lock(path: Path, timeout_seconds: float) -> Iterator[None]:
    deadline = time.monotonic() + timeout_seconds
    with open(path, "a+") as handle:
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WarehouseLockTimeout(
                        f"Another process has held the warehouse lock {path} for over "
                        f"{timeout_seconds:.0f} s; check for a hung run before retrying."
                    ) from None
                if not waited:
                    log.info("Waiting for another writer to release %s", path)
                    waited = True
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
