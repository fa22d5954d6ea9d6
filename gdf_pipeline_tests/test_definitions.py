"""The Dagster definitions load, and hold the assets, checks, jobs, schedule and sensors."""

from __future__ import annotations

from dagster import AssetKey

from gdf_pipeline.definitions import defs
from gdf_pipeline.settings import Settings, SettingsError


def test_definitions_load_with_every_asset_check_job_and_schedule():
    defs.validate_loadable(defs)
    repository = defs.get_repository_def()

    keys = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert {"raw_orders", "oms_orders", "order_acknowledgements"} <= keys
    checks = {key.name for key in repository.asset_graph.asset_check_keys}
    assert {
        "unique_order_ids",
        "orders_have_lines",
        "orders_have_acknowledgement_records",
        "totals_consistent",
    } <= checks
    assert repository.has_job("sync_orders_job")
    assert repository.get_schedule_def("quarter_hourly_sync_schedule").cron_schedule == (
        "*/15 * * * *"
    )
    assert AssetKey("oms_orders") in repository.asset_graph.get_all_asset_keys()


def test_settings_name_the_variable_at_fault():
    for name, value in [
        ("GDF_API_VERSION", "v3"),
        ("GDF_RATE_LIMIT_BURST", "many"),
        ("GDF_TIMEZONE", "Mars/Olympus"),
    ]:
        try:
            Settings.from_env({name: value})
        except SettingsError as error:
            assert name in str(error)
        else:
            raise AssertionError(f"{name}={value} was accepted")
