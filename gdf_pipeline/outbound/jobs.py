"""The outbound job: shipment files and oms.shipments rows in, status updates to GoDataFeed out.

Two ops, because they fail differently: queueing only reads files and writes the warehouse,
posting talks to GoDataFeed. Posting takes whatever the ledger holds as due, so a run started
for one file also retries updates an earlier run could not post.
"""

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dagster import Config, OpExecutionContext, job, op
from pydantic import Field

from gdf_pipeline.analytics.assets import republish_analytics_copy
from gdf_pipeline.faults import crash_point
from gdf_pipeline.inbound.jobs import WAREHOUSE_TAGS
from gdf_pipeline.outbound import inbox, ledger
from gdf_pipeline.outbound.posting import post_due_updates, release_dead_claims
from gdf_pipeline.outbound.queue import queue_file, queue_table
from gdf_pipeline.resources import GoDataFeedResource
from gdf_pipeline.settings import Settings
from gdf_pipeline.warehouse import Warehouse
from gdf_pipeline.warehouse.step_counts import record_step_counts

QUEUE_COUNTS = (
    "files",
    "files_rejected",
    "files_already_processed",
    "table_rows",
    "rows_read",
    "rows_valid",
    "rows_rejected",
    "duplicates",
    "already_recorded",
    "queued",
)
POST_COUNTS = (
    "posted",
    "conflicts",
    "rejected_by_gdf",
    "failed",
    "waiting",
    "api_calls",
    "api_retries",
    "api_429s",
    "api_reauthorizations",
)


class QueueStatusUpdatesConfig(Config):
    """Which sources one run reads; by default the whole inbox and the table."""

    files: list[str] = Field(
        default_factory=list,
        description="Names of files in the shipments inbox to read (besides a scan, if any).",
    )
    scan_inbox: bool = Field(default=True, description="Read every ready file in the inbox.")
    read_table: bool = Field(default=True, description="Take new rows of oms.shipments.")
    inbox: str = Field(default="", description="The inbox folder; empty: from GDF_DATA_DIR.")
    timezone: str = Field(
        default="", description="Zone of ship dates without offset; empty: GDF_TIMEZONE."
    )


class PostStatusUpdatesConfig(Config):
    """How the posting step treats updates that failed or waited before."""

    retry_now: bool = Field(
        default=False,
        description="Retry FAILED and WAITING_ACK updates now instead of after their backoff.",
    )


@op
def queue_status_updates(
    context: OpExecutionContext, config: QueueStatusUpdatesConfig, warehouse: Warehouse
) -> dict:
    """Validates shipment files and new oms.shipments rows into the status update ledger."""
    inbox_dir, tz = _inbox_and_zone(config)
    now = datetime.now(UTC).replace(microsecond=0)
    counts = Counter()

    for path in _files_to_read(config, inbox_dir, context.log):
        counts.update(
            queue_file(
                warehouse,
                path,
                inbox_dir=inbox_dir,
                now=now,
                tz=tz,
                run_id=context.run_id,
                logger=context.log,
            )
        )
    if config.read_table:
        counts.update(
            queue_table(warehouse, now=now, tz=tz, run_id=context.run_id, logger=context.log)
        )

    metadata = {name: int(counts[name]) for name in QUEUE_COUNTS}
    with warehouse.get_connection() as conn:
        record_step_counts(conn, context.run_id, context.job_name, "queue_status_updates", metadata)
    crash_point("after_queue")
    context.add_output_metadata(metadata)
    context.log.info(
        f"Queued {metadata['queued']} status updates from {metadata['rows_read']} rows "
        f"({metadata['rows_rejected']} rejected, {metadata['duplicates']} duplicates)"
    )
    return metadata


@op
def post_status_updates(
    context: OpExecutionContext,
    config: PostStatusUpdatesConfig,
    queued: dict,
    warehouse: Warehouse,
    gdf: GoDataFeedResource,
) -> dict:
    """Posts every due status update to GoDataFeed once and records each answer."""
    with warehouse.get_connection() as conn:
        release_dead_claims(warehouse, conn, context.log)
        due = ledger.count_due(conn, datetime.now(UTC), ignore_backoff=config.retry_now)
        waiting = ledger.count_waiting(conn)

    if due:
        counts = post_due_updates(
            warehouse,
            gdf,
            run_id=context.run_id,
            logger=context.log,
            ignore_backoff=config.retry_now,
        )
    else:
        # Nothing to send: no client, so no authorization call either.
        counts = Counter(waiting=waiting)

    metadata = {name: int(counts[name]) for name in POST_COUNTS}
    with warehouse.get_connection() as conn:
        record_step_counts(conn, context.run_id, context.job_name, "post_status_updates", metadata)
    context.add_output_metadata(metadata)
    context.log.info(
        f"Posted {metadata['posted']} status updates; {metadata['conflicts']} conflicts, "
        f"{metadata['rejected_by_gdf']} rejected by GoDataFeed, {metadata['failed']} failed, "
        f"{metadata['waiting']} waiting for an acknowledgement; {metadata['api_calls']} API "
        f"calls, {metadata['api_429s']} answered 429"
    )
    return metadata


@job(tags=WAREHOUSE_TAGS)
def post_status_updates_job():
    """Queue shipments from the inbox and oms.shipments, then post due status updates."""
    republish_analytics_copy(post_status_updates(queue_status_updates()))


def _inbox_and_zone(config: QueueStatusUpdatesConfig) -> tuple[Path, ZoneInfo]:
    if config.inbox and config.timezone:
        return Path(config.inbox), ZoneInfo(config.timezone)
    settings = Settings.from_env()
    return (
        Path(config.inbox) if config.inbox else settings.shipments_inbox,
        ZoneInfo(config.timezone) if config.timezone else settings.tz,
    )


def _files_to_read(config: QueueStatusUpdatesConfig, inbox_dir: Path, logger) -> list[Path]:
    chosen: list[Path] = []
    for name in config.files:
        # Only bare names of ready files: a run config never reaches outside the inbox.
        if not inbox.is_ready_name(name):
            logger.warning(f"Skipping {name!r}: not the name of a .csv file in the inbox")
            continue
        path = inbox_dir / name
        if path.is_symlink() or not path.is_file():
            logger.info(f"{name} is no longer in the inbox; another run took it")
            continue
        chosen.append(path)
    if config.scan_inbox:
        chosen += [path for path in inbox.ready_files(inbox_dir) if path not in chosen]
        for name, what in inbox.unread_entries(inbox_dir):
            # Links are never followed: one could reach any file the pipeline may read.
            logger.warning(
                f"Not reading {name} in the inbox: it is {what}, not a file. Put the file "
                "itself in the inbox."
            )
    return chosen
