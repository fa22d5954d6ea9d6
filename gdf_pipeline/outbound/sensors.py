"""Sensors that start post_status_updates_job: one for the drop folder, one for the table.

The file sensor requests one run per distinct file content, with the content hash in the run
key, so an identical file dropped again never starts a second run; an edited file has a new
hash and does. Its cursor remembers the hashes it requested and, per file, the size and
modification time it hashed, so an unchanged file is not read again on every tick.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from gdf_pipeline.outbound import inbox, ledger
from gdf_pipeline.outbound.jobs import post_status_updates_job
from gdf_pipeline.outbound.queue import settle_known_file
from gdf_pipeline.settings import Settings
from gdf_pipeline.warehouse import Warehouse, WarehouseLockTimeout

# A sensor tick must finish within Dagster's evaluation timeout; when a run holds the
# warehouse longer than this, the tick skips and the next one looks again.
SENSOR_LOCK_SECONDS = 10.0
REQUESTED_REMEMBERED = 500
RUN_KEY_PREFIX = "shipment-file-"
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


@sensor(
    job=post_status_updates_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
)
def shipment_files_sensor(context: SensorEvaluationContext, warehouse: Warehouse):
    """Starts post_status_updates_job for each new or edited CSV file in the shipments inbox."""
    inbox_dir = Settings.from_env().shipments_inbox
    cursor = _FilesCursor.load(context.cursor)
    hashes = _hash_ready_files(inbox_dir, cursor, context.log)
    if not hashes:
        return SensorResult(
            skip_reason=SkipReason("No ready .csv file in the inbox"), cursor=cursor.dump()
        )

    try:
        with _short_lock(warehouse).get_connection() as conn:
            processed = ledger.processed_hashes(conn, sorted(set(hashes.values())))
            for path, file_hash in hashes.items():
                if file_hash in processed:
                    known = ledger.processed_file(conn, file_hash)
                    settle_known_file(
                        conn, path, known, inbox_dir=inbox_dir, now=_now(), logger=context.log
                    )
    except WarehouseLockTimeout:
        return SensorResult(
            skip_reason=SkipReason("The warehouse is busy; the next tick looks again"),
            cursor=cursor.dump(),
        )

    run_requests = []
    for path, file_hash in hashes.items():
        if file_hash in processed or file_hash in cursor.requested:
            continue
        cursor.requested[file_hash] = _now().isoformat()
        run_requests.append(
            RunRequest(
                run_key=RUN_KEY_PREFIX + file_hash,
                run_config={
                    "ops": {
                        "queue_status_updates": {
                            "config": {
                                "files": [path.name],
                                "scan_inbox": False,
                                "read_table": False,
                            }
                        }
                    }
                },
                tags={"gdf/shipment_file": path.name[:200], "gdf/file_hash": file_hash[:16]},
            )
        )

    # TODO: request again a file whose run failed before its commit (it stays in the inbox
    # until `gdf-pipeline ship` runs or the run is re-executed), when run status sensors are in.
    if not run_requests:
        return SensorResult(
            skip_reason=SkipReason("Every file in the inbox is processed or already requested"),
            cursor=cursor.dump(),
        )
    return SensorResult(run_requests=run_requests, cursor=cursor.dump())


@sensor(
    job=post_status_updates_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
)
def shipments_table_sensor(context: SensorEvaluationContext, warehouse: Warehouse):
    """Starts post_status_updates_job when oms.shipments has new rows or updates are due."""
    try:
        with _short_lock(warehouse).get_connection() as conn:
            unqueued = ledger.count_unqueued_shipments(conn)
            due = ledger.count_due(conn, _now())
    except WarehouseLockTimeout:
        return SkipReason("The warehouse is busy; the next tick looks again")
    if not unqueued and not due:
        return SkipReason("No new oms.shipments rows and no status update due")

    # One table run at a time: a run still queued or going will take these rows too.
    in_flight = context.instance.get_runs(
        filters=RunsFilter(
            job_name=post_status_updates_job.name,
            statuses=IN_FLIGHT,
            tags={"dagster/sensor_name": shipments_table_sensor.name},
        ),
        limit=1,
    )
    if in_flight:
        return SkipReason(f"Run {in_flight[0].run_id} is still taking the rows")

    context.log.info(f"{unqueued} new oms.shipments rows, {due} status updates due")
    return RunRequest(
        run_config={
            "ops": {
                "queue_status_updates": {
                    "config": {"files": [], "scan_inbox": False, "read_table": True}
                }
            }
        },
        tags={"gdf/unqueued_shipments": str(unqueued), "gdf/due_updates": str(due)},
    )


class _FilesCursor:
    def __init__(self, requested: dict[str, str], seen: dict[str, list]):
        self.requested = requested  # content hash -> when requested
        self.seen = seen  # file name -> [size, mtime_ns, ctime_ns, inode, content hash]

    @classmethod
    def load(cls, text: str | None) -> "_FilesCursor":
        try:
            data = json.loads(text) if text else {}
            return cls(dict(data.get("requested", {})), dict(data.get("seen", {})))
        except (ValueError, TypeError, AttributeError):
            # A cursor from another version: start over; run keys still stop a second run.
            return cls({}, {})

    def dump(self) -> str:
        newest = sorted(self.requested.items(), key=lambda item: item[1])[-REQUESTED_REMEMBERED:]
        return json.dumps({"requested": dict(newest), "seen": self.seen}, sort_keys=True)


def _hash_ready_files(inbox_dir: Path, cursor: _FilesCursor, logger) -> dict[Path, str]:
    hashes: dict[Path, str] = {}
    seen: dict[str, list] = {}
    for path in inbox.ready_files(inbox_dir):
        try:
            identity = _identity(path)
            remembered = cursor.seen.get(path.name)
            if remembered and remembered[:-1] == identity:
                file_hash = remembered[-1]
            else:
                scan = inbox.scan_file(path)
                if _identity(path) != identity:
                    logger.info(f"{path.name} is still changing; the next tick looks again")
                    continue
                file_hash = scan.sha256
        except FileNotFoundError:
            continue
        hashes[path] = file_hash
        seen[path.name] = [*identity, file_hash]
    cursor.seen = seen
    return hashes


def _identity(path: Path) -> list[int]:
    # ctime and inode change with any write or replacement, and no copy tool can preserve them,
    # so a remembered hash is never taken for a different file under the same name.
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def _short_lock(warehouse: Warehouse) -> Warehouse:
    return warehouse.model_copy(update={"lock_timeout_seconds": SENSOR_LOCK_SECONDS})


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
