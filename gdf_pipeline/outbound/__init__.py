"""Outbound: shipments and cancellations from a CSV drop folder and oms.shipments, validated,
recorded once in the status update ledger and posted to GoDataFeed once."""

from __future__ import annotations

from dagster import DagsterInstance

from gdf_pipeline.outbound.jobs import POST_COUNTS, QUEUE_COUNTS, post_status_updates_job
from gdf_pipeline.outbound.sensors import shipment_files_sensor, shipments_table_sensor
from gdf_pipeline.settings import Settings

outbound_jobs = [post_status_updates_job]
outbound_sensors = [shipment_files_sensor, shipments_table_sensor]


def run_ship(
    settings: Settings | None = None,
    *,
    instance: DagsterInstance | None = None,
    resources: dict | None = None,
) -> dict:
    """One pass over the inbox and oms.shipments, then posting, as one Dagster run.

    Retries FAILED and WAITING_ACK updates at once (an operator or cron asked for this pass).
    Returns the run's counts: files, files_rejected, files_already_processed, table_rows,
    rows_read, rows_valid, rows_rejected, duplicates, already_recorded, queued, posted,
    conflicts, rejected_by_gdf, failed, waiting, api_calls, api_retries, api_429s,
    api_reauthorizations, plus run_id and success. Raises when a step fails.
    """
    from gdf_pipeline.instance import prepare_instance
    from gdf_pipeline.resources import build_resources

    settings = settings or Settings.from_env()
    result = post_status_updates_job.execute_in_process(
        run_config={
            "ops": {
                "queue_status_updates": {
                    "config": {
                        "scan_inbox": True,
                        "read_table": True,
                        "inbox": str(settings.shipments_inbox),
                        "timezone": settings.timezone,
                    }
                },
                "post_status_updates": {"config": {"retry_now": True}},
            },
            "loggers": {"console": {"config": {"log_level": "INFO"}}},
        },
        instance=instance if instance is not None else prepare_instance(settings),
        resources=resources if resources is not None else build_resources(settings),
        tags={"gdf/trigger": "ship"},
    )
    counts = {
        **result.output_for_node("queue_status_updates"),
        **result.output_for_node("post_status_updates"),
    }
    return {**counts, "run_id": result.run_id, "success": result.success}


__all__ = [
    "POST_COUNTS",
    "QUEUE_COUNTS",
    "outbound_jobs",
    "outbound_sensors",
    "post_status_updates_job",
    "run_ship",
]
