"""Running the pipeline's jobs from the command line, and summarising what a run did."""

from __future__ import annotations

from dataclasses import dataclass, field

from dagster import DagsterEventType, ExecuteInProcessResult

from gdf_pipeline.instance import prepare_instance
from gdf_pipeline.settings import Settings

# The summary's lines: (label, asset, metadata key), in the order an operator reads them.
SYNC_SUMMARY = [
    ("pulled", "raw_orders", "orders_pulled"),
    ("new", "oms_orders", "orders_new"),
    ("already known", "oms_orders", "orders_already_known"),
    ("loaded", "oms_orders", "orders_loaded"),
    ("acknowledged", "order_acknowledgements", "orders_acknowledged"),
    ("pending", "order_acknowledgements", "acknowledgements_pending"),
    ("quarantined", "oms_orders", "orders_quarantined"),
    ("cancelled upstream", "oms_orders", "orders_cancelled_upstream"),
]


@dataclass
class RunSummary:
    """What one run did: its id, success, per-asset metadata, and failure messages."""

    run_id: str
    success: bool
    metadata: dict[str, dict] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def value(self, asset: str, key: str, default=0):
        return self.metadata.get(asset, {}).get(key, default)

    def total(self, key: str) -> int:
        return sum(int(values.get(key, 0) or 0) for values in self.metadata.values())


# What `gdf-pipeline ship` asks of the outbound job: every source, and a retry now of updates
# that failed or waited before (an operator or cron asked for this pass).
SHIP_RUN_CONFIG = {
    "ops": {
        "queue_status_updates": {"config": {"scan_inbox": True, "read_table": True}},
        "post_status_updates": {"config": {"retry_now": True}},
    }
}

SHIP_SUMMARY = [
    ("files", "queue_status_updates", "files"),
    ("files rejected", "queue_status_updates", "files_rejected"),
    ("table rows", "queue_status_updates", "table_rows"),
    ("rows read", "queue_status_updates", "rows_read"),
    ("rows rejected", "queue_status_updates", "rows_rejected"),
    ("duplicates", "queue_status_updates", "duplicates"),
    ("queued", "queue_status_updates", "queued"),
    ("posted", "post_status_updates", "posted"),
    ("waiting for ack", "post_status_updates", "waiting"),
    ("conflicts", "post_status_updates", "conflicts"),
    ("rejected by GDF", "post_status_updates", "rejected_by_gdf"),
    ("failed, to retry", "post_status_updates", "failed"),
]


def run_job(
    job_name: str, settings: Settings | None = None, run_config: dict | None = None
) -> RunSummary:
    """Runs one job in-process as a Dagster run recorded in the instance at DAGSTER_HOME."""
    from gdf_pipeline.definitions import build_definitions

    settings = settings or Settings.from_env()
    instance = prepare_instance(settings)
    job = build_definitions(settings).resolve_job_def(job_name)
    result = job.execute_in_process(
        run_config={
            **(run_config or {}),
            "loggers": {"console": {"config": {"log_level": "INFO"}}},
        },
        instance=instance,
        raise_on_error=False,
    )
    return summarise(result)


def summarise(result: ExecuteInProcessResult) -> RunSummary:
    """Collects each step's counts and every step failure of a finished run.

    Assets report their counts on their materializations, ops on their outputs.
    """
    summary = RunSummary(run_id=result.run_id, success=result.success)
    asset_steps = set()
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        values = {key: entry.value for key, entry in materialization.metadata.items()}
        summary.metadata[materialization.asset_key.to_user_string()] = values
        asset_steps.add(event.step_key)
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_OUTPUT and event.step_key not in asset_steps:
            metadata = event.step_output_data.metadata or {}
            if metadata:
                summary.metadata[event.step_key] = {k: v.value for k, v in metadata.items()}
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            summary.errors.append(f"{event.step_key}: {error.message.strip() if error else ''}")
    return summary


def format_sync_summary(summary: RunSummary) -> str:
    """The sync summary as aligned lines, API calls and 429s over all steps last."""
    return _format("sync", summary, SYNC_SUMMARY)


def format_ship_summary(summary: RunSummary) -> str:
    """The ship summary as aligned lines, API calls and 429s over all steps last."""
    return _format("ship", summary, SHIP_SUMMARY)


def _format(name: str, summary: RunSummary, layout: list[tuple[str, str, str]]) -> str:
    rows = [(label, summary.value(step, key)) for label, step, key in layout]
    rows += [("API calls", summary.total("api_calls")), ("429s", summary.total("api_429s"))]
    width = max(len(label) for label, _ in rows)
    lines = [f"{name} run {summary.run_id}: {'succeeded' if summary.success else 'FAILED'}"]
    lines += [f"  {label:<{width}}  {value:>8}" for label, value in rows]
    lines += [f"  error: {error}" for error in summary.errors]
    return "\n".join(lines)
