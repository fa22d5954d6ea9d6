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


def run_job(job_name: str, settings: Settings | None = None) -> RunSummary:
    """Runs one job in-process as a Dagster run recorded in the instance at DAGSTER_HOME."""
    from gdf_pipeline.definitions import build_definitions

    settings = settings or Settings.from_env()
    instance = prepare_instance(settings)
    job = build_definitions(settings).resolve_job_def(job_name)
    result = job.execute_in_process(
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        instance=instance,
        raise_on_error=False,
    )
    return summarise(result)


def summarise(result: ExecuteInProcessResult) -> RunSummary:
    """Collects every materialization's metadata and every step failure of a finished run."""
    summary = RunSummary(run_id=result.run_id, success=result.success)
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        values = {key: entry.value for key, entry in materialization.metadata.items()}
        summary.metadata[materialization.asset_key.to_user_string()] = values
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            summary.errors.append(f"{event.step_key}: {error.message.strip() if error else ''}")
    return summary


def format_sync_summary(summary: RunSummary) -> str:
    """The sync summary as aligned lines, API calls and 429s over all steps last."""
    rows = [(label, summary.value(asset, key)) for label, asset, key in SYNC_SUMMARY]
    rows += [("API calls", summary.total("api_calls")), ("429s", summary.total("api_429s"))]
    width = max(len(label) for label, _ in rows)
    lines = [f"sync run {summary.run_id}: {'succeeded' if summary.success else 'FAILED'}"]
    lines += [f"  {label:<{width}}  {value:>8}" for label, value in rows]
    lines += [f"  error: {error}" for error in summary.errors]
    return "\n".join(lines)
