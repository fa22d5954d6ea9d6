"""The cost of a sync that finds nothing new, on a warehouse that already holds a history.

`idle_sync_work` first runs sync_orders_job in-process once, as the sync before it would have
(it publishes the analytics copy and sets the cursors). It then times the pipeline's own work
for a sync with nothing new: the bodies of the job's four assets, step by step, calling the
same functions with the same arguments, without Dagster's process start, run storage and
event log around them. Last, one more in-process run gives the steps' durations as Dagster
records them, for comparison.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

REPEATS = 3


def idle_sync_work(url: str, consumer_key: str, data_dir: str) -> dict:
    """Median own work of REPEATS syncs with nothing new on `data_dir`, per step and in all."""
    os.environ.update(
        {
            "GDF_API_URL": url,
            "GDF_CONSUMER_KEY": consumer_key,
            "GDF_DATA_DIR": data_dir,
            "DAGSTER_HOME": os.path.join(data_dir, "dagster_home"),
        }
    )
    from gdf_pipeline.definitions import build_definitions
    from gdf_pipeline.instance import prepare_instance
    from gdf_pipeline.settings import Settings

    settings = Settings.from_env()
    instance = prepare_instance(settings)
    job = build_definitions(settings).resolve_job_def("sync_orders_job")
    job.execute_in_process(instance=instance, raise_on_error=True)

    runs = [_own_work(settings, consumer_key) for _ in range(REPEATS)]
    steps = {step: statistics.median(run[step] for run in runs) for step in runs[0]}
    totals = [sum(run.values()) for run in runs]

    started = time.perf_counter()
    result = job.execute_in_process(instance=instance, raise_on_error=True)
    run_seconds = time.perf_counter() - started
    return {
        "steps": steps,
        "seconds": statistics.median(totals),
        "dagster_steps": _step_seconds(instance, result.run_id),
        "dagster_run_seconds": run_seconds,
    }


def _own_work(settings, consumer_key: str) -> dict[str, float]:
    """The four asset bodies of sync_orders_job, as they run, each timed."""
    from gdf_pipeline.inbound.acknowledge import pending_acknowledgements, post_acknowledgements
    from gdf_pipeline.inbound.assets import _CHECK_SQL
    from gdf_pipeline.inbound.load import load_orders
    from gdf_pipeline.inbound.pull import (
        fetch_listings,
        next_cancellation_cursor,
        read_cancellation_cursor,
        store_listings,
    )
    from gdf_pipeline.resources import GoDataFeedResource
    from gdf_pipeline.warehouse import Warehouse
    from gdf_pipeline.warehouse.analytics import publish_analytics_copy
    from gdf_pipeline.warehouse.step_counts import record_step_counts

    run_id, job = f"bench-idle-{time.time_ns()}", "sync_orders_job"
    warehouse = Warehouse(
        database=str(settings.warehouse_path),
        analytics_copy_path=str(settings.analytics_copy_path),
        order_number_prefix=settings.order_number_prefix,
    )
    gdf = GoDataFeedResource(
        api_url=settings.api_url,
        consumer_key=consumer_key,
        rate_limit_burst=settings.rate_limit_burst,
        rate_limit_per_second=settings.rate_limit_per_second,
        state_dir=str(settings.state_dir),
    )
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    with warehouse.get_connection() as conn:
        cursor = read_cancellation_cursor(conn)
    with gdf.get_client() as client:
        listings = fetch_listings(client, cursor)
        calls = client.stats.calls
    new, cancelled = listings[0].orders, (listings[1].orders if len(listings) > 1 else [])
    with warehouse.get_connection() as conn:
        store_listings(conn, listings, run_id, next_cancellation_cursor(cursor, new, cancelled))
        record_step_counts(conn, run_id, job, "raw_orders", {"api_calls": calls})
    seconds["raw_orders"] = time.perf_counter() - started

    started = time.perf_counter()
    with warehouse.get_connection() as conn:
        counts = load_orders(conn, run_id, warehouse.order_number_prefix)
        {name: conn.execute(sql).fetchone()[0] for name, sql in _CHECK_SQL.items()}
        conn.execute(
            "SELECT order_number FROM oms.orders WHERE load_run_id = ? "
            "AND NOT totals_consistent ORDER BY order_number LIMIT 100",
            [run_id],
        ).fetchall()
        record_step_counts(conn, run_id, job, "oms_orders", counts)
    seconds["oms_orders"] = time.perf_counter() - started

    started = time.perf_counter()
    with warehouse.get_connection() as conn:
        pending = pending_acknowledgements(conn)
    with gdf.get_client() as client:
        post_acknowledgements(client, warehouse, pending)
    with warehouse.get_connection() as conn:
        conn.execute("SELECT count(*) FROM sync.acknowledgements WHERE status = 'PENDING'")
        record_step_counts(conn, run_id, job, "order_acknowledgements", {})
    seconds["order_acknowledgements"] = time.perf_counter() - started

    started = time.perf_counter()
    with warehouse.get_connection() as conn:
        publish_analytics_copy(conn, Path(warehouse.analytics_copy_path))
    seconds["analytics_copy"] = time.perf_counter() - started
    return seconds


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            seconds[event.step_key] = entry.timestamp - started[event.step_key]
    return seconds
