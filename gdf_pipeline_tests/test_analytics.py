"""The analytics copy and the status report: a reader holding the copy open during a sync sees
no error on either side; the copy carries the OMS tables and the analytics views; the status
report and its JSON reflect a real run."""

from __future__ import annotations

import json

import duckdb
from cli_runs import run_cli, start_cli

from gdf_pipeline.emulator import Emulator


def test_reader_holding_the_copy_open_during_a_sync_sees_no_error(tmp_path):
    with Emulator(orders=30, seed=21, rate_burst=10, rate_per_second=20).start() as emulator:
        first = run_cli(emulator, tmp_path, "sync")
        assert first.returncode == 0, first.stderr
        copy = tmp_path / "analytics" / "analytics_copy.duckdb"
        reader = duckdb.connect(str(copy), read_only=True)
        assert reader.execute("SELECT count(*) FROM oms.orders").fetchone() == (30,)

        emulator.import_orders(20)
        sync = start_cli(emulator, tmp_path, "sync")
        reads = 0
        while sync.poll() is None:
            # The reader keeps querying its copy while the run writes and republishes.
            assert reader.execute("SELECT count(*) FROM analytics.order_lifecycle").fetchone()[0]
            reads += 1
        stdout, stderr = sync.communicate()

        assert sync.returncode == 0, stdout + stderr
        assert reads > 0
        assert reader.execute("SELECT count(*) FROM oms.orders").fetchone() == (30,)
        reader.close()
        with duckdb.connect(str(copy), read_only=True) as fresh:
            assert fresh.execute("SELECT count(*) FROM oms.orders").fetchone() == (50,)
            stages = dict(
                fresh.execute(
                    "SELECT stage, count(*) FROM analytics.order_lifecycle GROUP BY 1"
                ).fetchall()
            )
            assert stages == {"awaiting shipment": 50}
            revenue = fresh.execute("SELECT sum(orders) FROM analytics.daily_orders").fetchone()[0]
            assert revenue == 50


def test_status_reports_a_real_run_as_tables_and_json(tmp_path):
    with Emulator(orders=12, seed=4, rate_burst=10, rate_per_second=20).start() as emulator:
        assert run_cli(emulator, tmp_path, "sync").returncode == 0
        text = run_cli(emulator, tmp_path, "status")
        as_json = run_cli(emulator, tmp_path, "status", "--json")

    assert text.returncode == 0, text.stderr
    for title in ("Last runs", "Orders", "Acknowledgements", "Backlog", "At a glance"):
        assert f"\n{title}\n" in text.stdout
    assert "sync_orders_job  SUCCESS" in text.stdout
    report = json.loads(as_json.stdout)
    assert report["orders_by_status"] == {"OPEN": 12}
    assert report["acknowledgements_by_status"] == {"ACKNOWLEDGED": 12}
    assert report["api_today"]["calls"] >= 12 + 2
    assert report["api_today"]["429s"] == 0
    assert report["last_runs"][0]["status"] == "SUCCESS"


def test_status_without_a_warehouse_says_what_to_do(tmp_path):
    with Emulator(orders=0, seed=1).start() as emulator:
        result = run_cli(emulator, tmp_path, "status")

    assert result.returncode == 1
    assert "run `gdf-pipeline sync` first" in result.stderr
