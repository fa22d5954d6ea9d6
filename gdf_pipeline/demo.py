"""`gdf-pipeline demo`: the whole pipeline against a local emulator, no credentials, no network.

The demo works in its own folder, $GDF_DATA_DIR/demo, which it empties first: the emulator
makes up new orders each time, and a warehouse from an earlier demo would not know them.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from pathlib import Path

import duckdb

from gdf_pipeline.emulator import Emulator
from gdf_pipeline.runs import (
    SHIP_RUN_CONFIG,
    format_ship_summary,
    format_sync_summary,
    run_job,
)
from gdf_pipeline.settings import Settings

DEMO_ORDERS = 60
DEMO_SEED = 2026


def run_demo() -> int:
    """Starts the emulator, syncs, ships a sample file, syncs again; prints where to look."""
    started = time.monotonic()
    base = Path(os.environ.get("GDF_DATA_DIR") or "data").resolve()
    data_dir = base / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)

    with Emulator(orders=DEMO_ORDERS, seed=DEMO_SEED).start() as emulator:
        os.environ.update(
            {
                "GDF_API_URL": emulator.url,
                "GDF_CONSUMER_KEY": emulator.consumer_key,
                "GDF_DATA_DIR": str(data_dir),
                "DAGSTER_HOME": str(data_dir / "dagster_home"),
            }
        )
        settings = Settings.from_env()
        print(f"GoDataFeed emulator with {DEMO_ORDERS} NEW orders at {emulator.url}\n")

        print("1. Sync: pull NEW orders, load them into the OMS tables, acknowledge them")
        runs = [run_job("sync_orders_job", settings)]
        print(format_sync_summary(runs[-1]), "\n")

        sample = write_sample_shipments(settings)
        print(f"2. Ship: {sample.name} dropped in the inbox (12 shipments, 2 cancellations,")
        print("   1 duplicate row, 2 bad rows)")
        runs.append(run_job("post_status_updates_job", settings, SHIP_RUN_CONFIG))
        print(format_ship_summary(runs[-1]), "\n")

        print("3. Sync again: nothing new, nothing posted twice")
        runs.append(run_job("sync_orders_job", settings))
        print(format_sync_summary(runs[-1]), "\n")

        at_gdf = {status: emulator.count(status) for status in ("ACKNOWLEDGED", "SHIPPED")}
        at_gdf["CANCELLED"] = emulator.count("CANCELLED")

    rejected = sorted((settings.shipments_inbox / "rejected").glob("*.errors.csv"))
    print(
        "GoDataFeed now holds "
        + ", ".join(f"{count} {status.lower()}" for status, count in at_gdf.items())
        + " orders."
    )
    if rejected:
        print(f"The bad rows and their reasons: {rejected[0]}")
    print(f"Demo finished in {time.monotonic() - started:.0f} s. Where to look next:")
    print(f"  analytics copy (open it any time): {settings.analytics_copy_path}")
    print(
        '  query it:   .venv/bin/python -c "import duckdb; print(duckdb.connect('
        f"'{settings.analytics_copy_path}', read_only=True).sql("
        "'SELECT * FROM analytics.daily_orders'))\""
    )
    print(f"  status:     GDF_DATA_DIR={data_dir} .venv/bin/gdf-pipeline status")
    print(
        f"  Dagster UI: GDF_DATA_DIR={data_dir} DAGSTER_HOME={settings.dagster_home} "
        ".venv/bin/dagster dev -w workspace.yaml"
    )
    return 0 if all(run.success for run in runs) else 1


def write_sample_shipments(settings: Settings) -> Path:
    """Writes a shipment file for the demo's orders into the inbox, the way a seller should:
    under a temporary name, then renamed, so the pipeline never reads it half-written."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        orders = conn.execute(
            "SELECT order_number, gdf_order_id, marketplace_order_id FROM oms.orders "
            "ORDER BY order_number LIMIT 16"
        ).fetchall()
    today = time.strftime("%Y-%m-%d")
    rows = [
        [number, "", "", "SHIPPED", "UPS", "Ground", f"1Z999AA1012345{i:04d}", ship_date]
        for i, ((number, _, _), ship_date) in enumerate(
            zip(
                orders[:12],
                [f"{today}T23:59:00+00:00", f"{today} 23:58", today, ""] * 3,
                strict=True,
            )
        )
    ]
    rows[3][6] = ""  # a shipment without a tracking number is allowed
    rows.append(["", orders[12][1], "", "CANCELLED", "", "", "", ""])
    rows.append(["", "", orders[13][2], "cancelled", "", "", "", ""])
    rows.append(list(rows[0]))  # the same update twice: sent once
    rows.append([orders[14][0], "", "", "SHIPPED", "", "Ground", "1Z1", today])  # no carrier
    rows.append([orders[15][0], "", "", "SHIPPED", "UPS", "", '=HYPERLINK("x")', today])

    inbox = settings.shipments_inbox
    inbox.mkdir(parents=True, exist_ok=True)
    partial = inbox / "demo-shipments.csv.part"
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "order_number",
                "gdf_order_id",
                "marketplace_order_id",
                "status",
                "carrier",
                "shipping_method",
                "tracking_number",
                "ship_date",
            ]
        )
        writer.writerows(rows)
    return partial.rename(inbox / "demo-shipments.csv")
