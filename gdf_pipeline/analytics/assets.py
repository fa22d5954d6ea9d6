"""The analytics copy asset, and the freshness check that alerts when syncs stop succeeding."""

import warnings
from datetime import timedelta
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    BetaWarning,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    SupersessionWarning,
    asset,
    build_last_update_freshness_checks,
    build_sensor_for_freshness_checks,
    op,
)

from gdf_pipeline.inbound.assets import order_acknowledgements
from gdf_pipeline.warehouse import Warehouse
from gdf_pipeline.warehouse.analytics import publish_analytics_copy


def publish(context, warehouse: Warehouse) -> dict:
    """Publishes the analytics copy if anything changed; logs and returns what it did."""
    with warehouse.get_connection() as conn:
        outcome = publish_analytics_copy(conn, Path(warehouse.analytics_copy_path))
    if outcome["published"]:
        context.log.info(f"Published the analytics copy to {warehouse.analytics_copy_path}")
    return outcome


@asset(group_name="analytics", deps=[order_acknowledgements], kinds={"duckdb"})
def analytics_copy(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """Read-only copy of the OMS and sync tables and analytics views, replaced atomically."""
    outcome = publish(context, warehouse)
    return MaterializeResult(
        metadata={
            "published": outcome["published"],
            "tables": outcome["tables"],
            "publish_seconds": round(outcome["seconds"], 3),
            "path": MetadataValue.path(warehouse.analytics_copy_path),
        }
    )


@op
def republish_analytics_copy(
    context: OpExecutionContext, posted: dict, warehouse: Warehouse
) -> dict:
    """Republishes the analytics copy after the status updates, if anything changed."""
    outcome = publish(context, warehouse)
    context.add_output_metadata(
        {"published": outcome["published"], "publish_seconds": round(outcome["seconds"], 3)}
    )
    return outcome


# A sync runs every 15 minutes; an hour without a successful one means orders are not flowing.
# TODO: move to a FreshnessPolicy on order_acknowledgements, once its FAIL state can be tested
# and alerted on without a running daemon as these check results can.
# The sensor factory passes Dagster's own beta `owners` parameter, also when the definitions
# are resolved later, so that one warning is silenced for the process.
warnings.filterwarnings("ignore", message="Parameter `owners`", category=BetaWarning)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", category=SupersessionWarning)
    sync_freshness_checks = build_last_update_freshness_checks(
        assets=[order_acknowledgements], lower_bound_delta=timedelta(hours=1)
    )
    freshness_checks_sensor = build_sensor_for_freshness_checks(
        freshness_checks=sync_freshness_checks,
        name="freshness_checks_sensor",
        default_status=DefaultSensorStatus.RUNNING,
    )
