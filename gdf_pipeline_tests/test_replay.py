"""Malformed orders from GoDataFeed are quarantined while the rest syncs, and an operator can
replay them without SQL: refetched after the seller fixed them, or corrected by hand."""

from __future__ import annotations

import json

import duckdb
from cli_runs import run_cli

from gdf_pipeline.emulator import REMOVE, Emulator


def quarantine(data_dir) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT gdf_order_id, reason, resolved_at IS NOT NULL FROM sync.quarantine ORDER BY 1"
        ).fetchall()


def test_malformed_orders_are_quarantined_then_replayed(tmp_path):
    with Emulator(orders=10, seed=8, rate_burst=0).start() as emulator:
        bad_money, no_lines, no_date = emulator.import_malformed(
            [{"subtotal": "12,50"}, {"items": []}, {"orderDate": REMOVE}]
        )

        first = run_cli(emulator, tmp_path, "sync")

        assert first.returncode == 0, first.stderr
        assert emulator.count("ACKNOWLEDGED") == 10
        reasons = {order_id: reason for order_id, reason, _ in quarantine(tmp_path)}
        assert reasons[bad_money] == 'subtotal is not a number: "12,50"'
        assert reasons[no_lines] == "the order has no lines"
        assert reasons[no_date] == "orderDate is not a date-time: null"

        # The seller fixes one order at the marketplace: a refetch loads it.
        good_subtotal = emulator.order(no_lines)["orderTotal"]
        emulator.amend_order(bad_money, {"subtotal": emulator.order(bad_money)["orderTotal"]})
        refetch = run_cli(emulator, tmp_path, "replay", "refetch")
        assert refetch.returncode == 0, refetch.stderr
        assert emulator.order(bad_money)["status"] == "ACKNOWLEDGED"

        # The operator corrects another by hand, from the exported file.
        folder = tmp_path / "fix"
        exported = run_cli(emulator, tmp_path, "replay", "export", str(folder))
        assert exported.returncode == 0, exported.stderr
        document = json.loads((folder / f"{no_date}.json").read_text(encoding="utf-8"))
        assert document["reason"] == "orderDate is not a date-time: null"
        document["order"]["orderDate"] = document["order"]["importedAt"]
        (folder / f"{no_date}.json").write_text(json.dumps(document), encoding="utf-8")
        corrected = run_cli(emulator, tmp_path, "replay", "orders", str(folder / f"{no_date}.json"))

        assert corrected.returncode == 0, corrected.stderr
        assert emulator.order(no_date)["status"] == "ACKNOWLEDGED"
        assert emulator.order(no_lines)["status"] == "NEW"
        resolved = {order_id: done for order_id, _, done in quarantine(tmp_path)}
        assert resolved == {bad_money: True, no_lines: False, no_date: True}
        assert good_subtotal is not None


def test_a_corrected_file_that_is_not_json_is_refused_with_its_line(tmp_path):
    broken = tmp_path / "order.json"
    broken.write_text('{"id": "x",\n  "items": [}', encoding="utf-8")
    with Emulator(orders=0, seed=2).start() as emulator:
        result = run_cli(emulator, tmp_path, "replay", "orders", str(broken))

    assert result.returncode == 1
    assert f"{broken}: not JSON (line 2" in result.stderr
