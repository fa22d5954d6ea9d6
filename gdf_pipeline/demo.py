"""`gdf-pipeline demo`: the whole pipeline against a local emulator, no credentials, no network.

The demo works in its own folder, $GDF_DATA_DIR/demo, which it empties first: the emulator
makes up new orders each time, and a warehouse from an earlier demo would not know them.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from gdf_pipeline.emulator import Emulator
from gdf_pipeline.runs import format_sync_summary, run_job
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
        first = run_job("sync_orders_job", settings)
        print(format_sync_summary(first), "\n")

        print("2. Sync again: nothing new, nothing posted twice")
        second = run_job("sync_orders_job", settings)
        print(format_sync_summary(second), "\n")

        ok = first.success and second.success
        acknowledged = emulator.count("ACKNOWLEDGED")

    print(f"GoDataFeed now holds {acknowledged} acknowledged orders.")
    print(f"Demo finished in {time.monotonic() - started:.0f} s. Where to look next:")
    print(f"  warehouse:  {settings.warehouse_path}")
    print(
        '  query it:   .venv/bin/python -c "import duckdb; print(duckdb.connect('
        f"'{settings.warehouse_path}', read_only=True).sql("
        "'SELECT marketplace, currency, count(*), sum(order_total) FROM oms.orders "
        "GROUP BY ALL'))\""
    )
    print(
        f"  Dagster UI: GDF_DATA_DIR={data_dir} DAGSTER_HOME={settings.dagster_home} "
        ".venv/bin/dagster dev -w workspace.yaml"
    )
    return 0 if ok else 1
