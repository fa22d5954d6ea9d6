"""The Dagster definitions: what `dagster dev -w workspace.yaml` and `gdf-pipeline` load."""

from __future__ import annotations

from dagster import Definitions

from gdf_pipeline.analytics.assets import (
    analytics_copy,
    freshness_checks_sensor,
    sync_freshness_checks,
)
from gdf_pipeline.inbound.assets import inbound_assets
from gdf_pipeline.inbound.jobs import quarter_hourly_sync_schedule, sync_orders_job
from gdf_pipeline.outbound import outbound_jobs, outbound_sensors
from gdf_pipeline.resources import build_resources
from gdf_pipeline.settings import Settings


def build_definitions(settings: Settings | None = None) -> Definitions:
    """Assets, checks, jobs, schedule and sensors, with resources built from the settings."""
    return Definitions(
        assets=[*inbound_assets, analytics_copy],
        asset_checks=sync_freshness_checks,
        jobs=[sync_orders_job, *outbound_jobs],
        schedules=[quarter_hourly_sync_schedule],
        sensors=[*outbound_sensors, freshness_checks_sensor],
        resources=build_resources(settings),
    )


defs = build_definitions()
