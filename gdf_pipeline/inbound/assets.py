"""Inbound assets: raw_orders -> oms_orders (with checks) -> order_acknowledgements."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from gdf_pipeline.faults import crash_point
from gdf_pipeline.inbound.acknowledge import pending_acknowledgements, post_acknowledgements
from gdf_pipeline.inbound.load import load_orders
from gdf_pipeline.inbound.pull import (
    fetch_listings,
    next_cancellation_cursor,
    read_cancellation_cursor,
    store_listings,
)
from gdf_pipeline.resources import GoDataFeedResource
from gdf_pipeline.warehouse import Warehouse
from gdf_pipeline.warehouse.step_counts import record_step_counts

GROUP = "inbound"


@asset(group_name=GROUP, kinds={"duckdb"})
def raw_orders(
    context: AssetExecutionContext, gdf: GoDataFeedResource, warehouse: Warehouse
) -> MaterializeResult:
    """NEW orders, and orders cancelled upstream since the last pull, as GoDataFeed sent them."""
    with warehouse.get_connection() as conn:
        cursor = read_cancellation_cursor(conn)

    def report(seen: int, total: int) -> None:
        context.log.info(f"Pulled {seen} of {total} NEW orders")

    with gdf.get_client() as client:
        listings = fetch_listings(client, cursor, on_page=report)
        stats = client.stats

    new_orders = listings[0].orders
    cancelled = listings[1].orders if len(listings) > 1 else []
    next_cursor = next_cancellation_cursor(cursor, new_orders, cancelled)
    metadata = {
        "orders_pulled": len(new_orders),
        "cancellations_pulled": len(cancelled),
        "api_calls": stats.calls,
        "api_retries": stats.retries,
        "api_429s": stats.throttled,
        "api_wait_seconds": round(stats.waited_seconds, 3),
    }
    with warehouse.get_connection() as conn:
        stored = store_listings(conn, listings, context.run_id, next_cursor)
        metadata["orders_quarantined_unstorable"] = stored["unstorable"]
        record_step_counts(conn, context.run_id, context.job_name, "raw_orders", metadata)
    crash_point("after_pull")
    if stored["unstorable"]:
        context.log.warning(
            f"{stored['unstorable']} pulled orders are not JSON the warehouse can store; they "
            "are in sync.quarantine with their text as received"
        )

    context.log.info(f"Pulled {len(new_orders)} NEW and {len(cancelled)} cancelled orders")
    metadata["cancellation_cursor"] = str(next_cursor) if next_cursor else "none"
    return MaterializeResult(metadata=metadata)


_CHECKS = [
    AssetCheckSpec(
        "unique_order_ids",
        asset="oms_orders",
        blocking=True,
        description="No order this run loaded shares its gdf_order_id or order_number with "
        "another order in oms.orders.",
    ),
    AssetCheckSpec(
        "orders_have_lines",
        asset="oms_orders",
        blocking=True,
        description="Every order this run loaded has at least one line in oms.order_lines.",
    ),
    AssetCheckSpec(
        "orders_have_acknowledgement_records",
        asset="oms_orders",
        blocking=True,
        description="Every order this run loaded has its record, with its number, in "
        "sync.acknowledgements.",
    ),
    AssetCheckSpec(
        "totals_consistent",
        asset="oms_orders",
        description="Totals add up (subtotal = lines, total = subtotal + shipping + tax - "
        "discount) for the orders this run loaded; marketplace rounding can break this.",
    ),
]

# The checks look at the orders this run loaded (load_orders leaves them in the connection's
# load_new table) and at the rows they meet: a check that scans whole tables costs every
# sync more as history grows, while the rows loaded earlier were checked when they came.
_CHECK_SQL = {
    "unique_order_ids": """
        SELECT (SELECT count(*) FROM oms.orders
                WHERE gdf_order_id IN (SELECT gdf_order_id FROM load_new))
             + (SELECT count(*) FROM oms.orders
                WHERE order_number IN (SELECT order_number FROM load_new))
             - 2 * (SELECT count(*) FROM load_new)""",
    "orders_have_lines": """
        SELECT count(*) FROM load_new o
        WHERE NOT EXISTS (SELECT 1 FROM oms.order_lines l WHERE l.order_number = o.order_number)""",
    "orders_have_acknowledgement_records": """
        SELECT count(*) FROM load_new o
        WHERE NOT EXISTS (SELECT 1 FROM sync.acknowledgements a
                          WHERE a.gdf_order_id = o.gdf_order_id
                            AND a.order_number = o.order_number)""",
}


@asset(group_name=GROUP, deps=[raw_orders], check_specs=_CHECKS, kinds={"duckdb"})
def oms_orders(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    """OMS orders and lines with their acknowledgement records; malformed orders quarantined."""
    with warehouse.get_connection() as conn:
        counts = load_orders(conn, context.run_id, warehouse.order_number_prefix)
        failures = {name: conn.execute(sql).fetchone()[0] for name, sql in _CHECK_SQL.items()}
        flagged = [
            row[0]
            for row in conn.execute(
                "SELECT order_number FROM oms.orders WHERE load_run_id = ? "
                "AND NOT totals_consistent ORDER BY order_number LIMIT 100",
                [context.run_id],
            ).fetchall()
        ]
        metadata = {
            "orders_new": counts["distinct_new"],
            "orders_loaded": counts["loaded"],
            "lines_loaded": counts["lines_loaded"],
            "orders_already_known": counts["already_known"],
            "orders_quarantined": counts["quarantined"],
            "orders_cancelled_upstream": counts["cancelled"],
            "orders_totals_flagged": counts["totals_flagged"],
        }
        record_step_counts(conn, context.run_id, context.job_name, "oms_orders", metadata)
    crash_point("after_load")

    checks = [
        AssetCheckResult(
            check_name=name,
            passed=count == 0,
            metadata={"failing_rows": count},
            description=None if count == 0 else f"{count} rows break {name}",
        )
        for name, count in failures.items()
    ]
    checks.append(
        AssetCheckResult(
            check_name="totals_consistent",
            passed=not flagged,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "orders_flagged": counts["totals_flagged"],
                "order_numbers": MetadataValue.text(", ".join(flagged) or "none"),
            },
        )
    )
    if counts["quarantined"]:
        context.log.warning(
            f"{counts['quarantined']} orders quarantined; see sync.quarantine for the reasons"
        )
    context.log.info(
        f"Loaded {counts['loaded']} orders ({counts['lines_loaded']} lines); "
        f"{counts['already_known']} already known, {counts['cancelled']} cancelled upstream"
    )
    return MaterializeResult(metadata=metadata, check_results=checks)


@asset(group_name=GROUP, deps=[oms_orders], kinds={"duckdb"})
def order_acknowledgements(
    context: AssetExecutionContext, gdf: GoDataFeedResource, warehouse: Warehouse
) -> MaterializeResult:
    """Acknowledgements posted to GoDataFeed with each loaded order's OMS order number."""
    # Only what the OMS has committed is acknowledged: marketplaces release stock holds on
    # acknowledgement, so an acknowledged order the OMS lost would never ship.
    with warehouse.get_connection() as conn:
        pending = pending_acknowledgements(conn)
    context.log.info(f"{len(pending)} acknowledgements to post")

    def report(done: int, total: int) -> None:
        context.log.info(f"Posted {done} of {total} acknowledgements")

    with gdf.get_client() as client:
        outcomes = post_acknowledgements(client, warehouse, pending, on_progress=report)
        stats = client.stats

    if outcomes["PENDING"]:
        context.log.warning(
            f"{outcomes['PENDING']} acknowledgements failed for now and will be retried"
        )
    metadata = {
        "acknowledgements_posted": len(pending),
        "orders_acknowledged": outcomes["ACKNOWLEDGED"],
        "acknowledgement_conflicts": outcomes["CONFLICT"],
        "acknowledgements_rejected": outcomes["REJECTED"],
        "orders_cancelled_before_acknowledgement": outcomes["CANCELLED"],
        "api_calls": stats.calls,
        "api_retries": stats.retries,
        "api_429s": stats.throttled,
        "api_wait_seconds": round(stats.waited_seconds, 3),
    }
    with warehouse.get_connection() as conn:
        metadata["acknowledgements_pending"] = conn.execute(
            "SELECT count(*) FROM sync.acknowledgements WHERE status = 'PENDING'"
        ).fetchone()[0]
        record_step_counts(
            conn, context.run_id, context.job_name, "order_acknowledgements", metadata
        )
    return MaterializeResult(metadata=metadata)


inbound_assets = [raw_orders, oms_orders, order_acknowledgements]
