"""The inbound job and its 15-minute schedule."""

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from gdf_pipeline.inbound.assets import inbound_assets

# Runs that write the warehouse share this tag; dagster.yaml lets one of them run at a time.
WAREHOUSE_TAGS = {"gdf/warehouse": "writer"}

sync_orders_job = define_asset_job(
    "sync_orders_job",
    # The analytics copy is named by key: it belongs to the analytics package, which reads the
    # inbound assets, not the other way round.
    selection=AssetSelection.assets(*inbound_assets) | AssetSelection.assets("analytics_copy"),
    description="Pull NEW orders, load them into the OMS tables, acknowledge them, publish "
    "the analytics copy.",
    tags=WAREHOUSE_TAGS,
)

# GoDataFeed imports marketplace orders every 15 to 30 minutes; polling more often gains nothing.
quarter_hourly_sync_schedule = ScheduleDefinition(
    name="quarter_hourly_sync_schedule",
    job=sync_orders_job,
    cron_schedule="*/15 * * * *",
    description="Runs sync_orders_job every 15 minutes.",
    default_status=DefaultScheduleStatus.RUNNING,
)
