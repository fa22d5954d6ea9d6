"""post_status_updates_job end to end against the emulator over loopback, through run_ship.

Covers: a mixed shipment file (offsets, local times, date-only and blank ship dates, empty
tracking numbers, cancellations, bad rows, duplicates) reaching GoDataFeed exactly as intended
and nothing else; an identical re-drop sending nothing; a crash between the ledger commit and
the move; updates waiting for an acknowledgement; conflicts recorded with both sides;
oms.shipments as a source; and the posting outcomes for 400, transient failures and a repeat
after a crash between posting and recording.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dagster import DagsterInstance

from gdf_pipeline.emulator import Emulator
from gdf_pipeline.gdf.client import ClientStats, GoDataFeedClient
from gdf_pipeline.gdf.errors import BadRequestError, TransientError
from gdf_pipeline.outbound import inbox, ledger, run_ship
from gdf_pipeline.outbound.posting import post_due_updates
from gdf_pipeline.resources import GoDataFeedResource
from gdf_pipeline.settings import Settings
from gdf_pipeline.warehouse import Warehouse

ZONE = "America/Chicago"
HEADER = [
    "Order Number",
    "GDF_Order_ID",
    "marketplace_order_id",
    "Status",
    "Carrier",
    "Shipping Method",
    "Tracking Number",
    "Ship Date",
    "Notes",
]


class Shop:
    """An emulator, a warehouse holding some of its orders, and a way to run `ship`."""

    def __init__(self, emulator: Emulator, data_dir: Path):
        self.emulator = emulator
        self.settings = Settings(
            api_url=emulator.url,
            consumer_key=emulator.consumer_key,
            data_dir=data_dir,
            timezone=ZONE,
            dagster_home=data_dir / "dagster_home",
        )
        self.warehouse = Warehouse(
            database=str(self.settings.warehouse_path),
            analytics_copy_path=str(self.settings.analytics_copy_path),
        )
        self.gdf = GoDataFeedResource(
            api_url=emulator.url,
            consumer_key=emulator.consumer_key,
            state_dir=str(self.settings.state_dir),
            rate_limit_burst=1000,
            rate_limit_per_second=1000.0,
        )
        self.instance = DagsterInstance.ephemeral()
        self.numbers: dict[str, str] = {}  # gdf_order_id -> order_number
        self.inbox = self.settings.shipments_inbox
        self.inbox.mkdir(parents=True)

    def add_orders(self, count: int, *, acknowledged: bool = True) -> list[dict]:
        """Imports orders at the emulator and puts them in oms.orders, acknowledged or not."""
        orders = [self.emulator.order(i) for i in self.emulator.import_orders(count)]
        with self.warehouse.get_connection() as conn:
            for order in orders:
                number = f"SO-{len(self.numbers) + 1:06d}"
                self.numbers[order["id"]] = number
                conn.execute(
                    """
                    INSERT INTO oms.orders (order_number, order_seq, gdf_order_id, marketplace,
                        marketplace_order_id, status, order_date, currency, subtotal,
                        shipping_total, tax_total, discount_total, order_total,
                        totals_consistent, loaded_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, 'OPEN', ?, 'USD', 0, 0, 0, 0, 0, true, now(), now())
                    """,
                    [
                        number,
                        len(self.numbers),
                        order["id"],
                        order["marketplace"],
                        order["marketplaceOrderId"],
                        order["orderDate"],
                    ],
                )
                conn.execute(
                    "INSERT INTO sync.acknowledgements (gdf_order_id, order_number, status, "
                    "created_at, updated_at) VALUES (?, ?, ?, now(), now())",
                    [order["id"], number, "ACKNOWLEDGED" if acknowledged else "PENDING"],
                )
        if acknowledged:
            with self.client() as client:
                for order in orders:
                    client.acknowledge(order["id"], self.numbers[order["id"]])
        return orders

    @contextmanager
    def client(self):
        with GoDataFeedClient(self.emulator.url, self.emulator.consumer_key) as client:
            yield client

    def drop(self, name: str, rows: list[list[str]], *, header=HEADER) -> bytes:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
        data = b"\xef\xbb\xbf" + text.getvalue().encode("utf-8")
        (self.inbox / name).write_bytes(data)
        return data

    def ship(self) -> dict:
        return run_ship(
            self.settings,
            instance=self.instance,
            resources={"gdf": self.gdf, "warehouse": self.warehouse},
        )

    def query(self, sql: str, params=None) -> list[tuple]:
        with self.warehouse.get_connection() as conn:
            return conn.execute(sql, params or []).fetchall()


@pytest.fixture
def shop(tmp_path):
    with Emulator(orders=0, seed=5, rate_burst=0).start() as emulator:
        yield Shop(emulator, tmp_path)


def order_date(order: dict) -> datetime:
    return datetime.fromisoformat(order["orderDate"])


def row(
    order,
    shop,
    *,
    by="number",
    status="",
    carrier="UPS",
    method="Ground",
    tracking="1Z999AA10123456784",
    ship_date="",
) -> list[str]:
    ids = {
        "number": [shop.numbers[order["id"]], "", ""],
        "gdf": ["", order["id"], ""],
        "marketplace": ["", "", order["marketplaceOrderId"]],
    }[by]
    return [*ids, status, carrier, method, tracking, ship_date, "note, with a comma"]


def test_a_mixed_file_reaches_gdf_exactly_and_a_redrop_sends_nothing(shop):
    zone = ZoneInfo(ZONE)
    orders = shop.add_orders(44)
    offset, naive, dated, blank = orders[0:8], orders[8:16], orders[16:24], orders[24:30]
    cancels, bad, untouched = orders[30:35], orders[35:39], orders[39:44]
    today = datetime.now(zone).date()

    rows = []
    for i, order in enumerate(offset):
        moment = (order_date(order) + timedelta(minutes=3)).astimezone(ZoneInfo("Asia/Kolkata"))
        rows.append(
            row(
                order,
                shop,
                by=["number", "gdf", "marketplace"][i % 3],
                ship_date=moment.isoformat(),
                tracking=f"TRK {i}-A",
            )
        )
    for i, order in enumerate(naive):
        local = (order_date(order) + timedelta(minutes=5)).astimezone(zone)
        rows.append(
            row(
                order,
                shop,
                status="shipped",
                carrier="FedEx",
                method="",
                ship_date=local.strftime("%Y-%m-%d %H:%M:%S"),
                tracking=f"7700{i}",
            )
        )
    for order in dated:
        rows.append(row(order, shop, status="Shipped", ship_date=today.isoformat()))
    for i, order in enumerate(blank):
        rows.append(row(order, shop, carrier="USPS", tracking="" if i % 2 else f"9400{i}"))
    for i, order in enumerate(cancels):
        rows.append(row(order, shop, status=["CANCELLED", "canceled"][i % 2], carrier=""))
    bad_rows = [
        ["SO-999999", "", "", "", "UPS", "", "1Z1", "", ""],
        row(bad[0], shop, tracking='=HYPERLINK("http://evil.example","x")'),
        row(bad[1], shop, carrier=""),
        row(bad[2], shop, ship_date=(order_date(bad[2]) - timedelta(hours=1)).isoformat()),
        row(bad[3], shop, ship_date=(order_date(bad[3]) - timedelta(days=2)).date().isoformat()),
    ]
    rows[5:5] = bad_rows[:2]
    rows[20:20] = bad_rows[2:]
    rows.append(rows[0])  # an exact duplicate
    rows.append(row(blank[0], shop, by="gdf", carrier="USPS", tracking="94000"))  # same update
    data = shop.drop("shipments.csv", rows)
    started = datetime.now(UTC).replace(microsecond=0)

    counts = shop.ship()

    finished = datetime.now(UTC) + timedelta(seconds=1)
    assert counts["success"]
    assert (counts["files"], counts["rows_read"], counts["rows_valid"]) == (1, 42, 37)
    assert (counts["rows_rejected"], counts["duplicates"], counts["queued"]) == (5, 2, 35)
    assert (counts["posted"], counts["conflicts"], counts["failed"]) == (35, 0, 0)
    assert counts["api_429s"] == 0

    calls = shop.emulator.stats.status_update_calls
    assert sum(calls.values()) == 35 and set(calls.values()) == {1}
    for order in bad + untouched:
        assert calls[order["id"]] == 0
        assert shop.emulator.order(order["id"])["status"] == "ACKNOWLEDGED"

    def shipment(order):
        current = shop.emulator.order(order["id"])
        assert current["status"] == "SHIPPED", current["id"]
        sent = current["shipment"]
        moment = datetime.fromisoformat(sent["shipDate"])
        assert "T" in sent["shipDate"] and moment.utcoffset() is not None
        assert moment >= order_date(order)
        return sent, moment

    for i, order in enumerate(offset):
        sent, moment = shipment(order)
        assert moment == (order_date(order) + timedelta(minutes=3)).replace(microsecond=0)
        assert (sent["carrier"], sent["shippingMethod"], sent["trackingNumber"]) == (
            "UPS",
            "Ground",
            f"TRK {i}-A",
        )
    for i, order in enumerate(naive):
        sent, moment = shipment(order)
        local = (order_date(order) + timedelta(minutes=5)).astimezone(zone).replace(tzinfo=None)
        assert moment == local.replace(tzinfo=zone, microsecond=0)
        assert (sent["carrier"], sent["shippingMethod"], sent["trackingNumber"]) == (
            "FedEx",
            None,
            f"7700{i}",
        )
    for order in dated:
        sent, moment = shipment(order)
        assert moment.astimezone(zone).date() == today
        assert started <= moment <= finished  # date-only today: the time of the run
    for i, order in enumerate(blank):
        sent, moment = shipment(order)
        assert started <= moment <= finished or moment == order_date(order)
        assert sent["trackingNumber"] == ("" if i % 2 else f"9400{i}")
    for order in cancels:
        assert shop.emulator.order(order["id"])["status"] == "CANCELLED"

    oms = dict(shop.query("SELECT gdf_order_id, status FROM oms.orders"))
    assert Counter(oms.values()) == Counter(SHIPPED=30, CANCELLED=5, OPEN=9)
    (tracking, shipped_at) = shop.query(
        "SELECT tracking_number, shipped_at FROM oms.orders WHERE gdf_order_id = ?",
        [offset[1]["id"]],
    )[0]
    assert tracking == "TRK 1-A"
    assert shipped_at == (order_date(offset[1]) + timedelta(minutes=3)).replace(microsecond=0)

    rejected = list((shop.inbox / "rejected").iterdir())
    (moved,) = [path for path in rejected if not path.name.endswith(".errors.csv")]
    assert moved.read_bytes() == data and moved.name.endswith("-shipments.csv")
    with open(inbox.errors_path(moved), newline="", encoding="utf-8") as handle:
        errors = list(csv.DictReader(handle))
    assert sorted(int(line["row"]) for line in errors) == [7, 8, 22, 23, 24]
    by_row = {int(line["row"]): line for line in errors}
    assert by_row[7]["column"] == "order_number" and "no order" in by_row[7]["reason"]
    assert by_row[8]["value"].startswith("'=HYPERLINK")
    assert by_row[22]["column"] == "carrier"
    assert "before the order's purchase time" in by_row[23]["reason"]
    assert "before the order's purchase date" in by_row[24]["reason"]
    assert not list(shop.inbox.glob("*.csv"))

    (shop.inbox / "again.csv").write_bytes(data)
    again = shop.ship()

    assert (again["files"], again["files_already_processed"], again["queued"]) == (0, 1, 0)
    assert again["posted"] == 0 and again["api_calls"] == 0
    assert sum(shop.emulator.stats.status_update_calls.values()) == 35
    assert len(list((shop.inbox / "rejected").glob("*-again.csv"))) == 1


def test_a_crash_between_commit_and_move_is_finished_by_the_next_run(shop, monkeypatch):
    orders = shop.add_orders(2)
    shop.drop("one.csv", [row(order, shop) for order in orders])

    def crash(path, target):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(inbox, "move", crash)
    with pytest.raises(BaseException, match="power cut"):
        shop.ship()
    monkeypatch.undo()
    assert (shop.inbox / "one.csv").exists()
    (planned,) = shop.query("SELECT final_path FROM sync.shipment_files")[0]

    counts = shop.ship()

    assert counts["files_already_processed"] == 1 and counts["queued"] == 0
    assert Path(planned).exists() and not (shop.inbox / "one.csv").exists()
    assert counts["posted"] == 2  # queued by the first run, posted by the second
    assert sum(shop.emulator.stats.status_update_calls.values()) == 2


def test_updates_wait_for_the_acknowledgement_then_go(shop):
    (order,) = shop.add_orders(1, acknowledged=False)
    shop.drop("wait.csv", [row(order, shop)])

    first = shop.ship()

    assert (first["queued"], first["posted"], first["waiting"]) == (1, 0, 1)
    assert shop.emulator.stats.status_update_calls[order["id"]] == 0
    assert shop.query("SELECT state FROM sync.status_updates") == [("WAITING_ACK",)]

    with shop.client() as client:
        client.acknowledge(order["id"], shop.numbers[order["id"]])
    shop.query("UPDATE sync.acknowledgements SET status = 'ACKNOWLEDGED'")
    second = shop.ship()

    assert (second["posted"], second["waiting"]) == (1, 0)
    assert shop.emulator.order(order["id"])["status"] == "SHIPPED"


def test_a_409_while_gdf_still_has_the_order_new_waits_instead_of_failing(shop):
    (order,) = shop.add_orders(1, acknowledged=False)
    shop.query("UPDATE sync.acknowledgements SET status = 'ACKNOWLEDGED'")
    shop.drop("early.csv", [row(order, shop)])

    counts = shop.ship()

    assert (counts["posted"], counts["conflicts"], counts["waiting"]) == (0, 0, 1)
    ((state, error, next_attempt),) = shop.query(
        "SELECT state, last_error, next_attempt_at FROM sync.status_updates"
    )
    assert state == "WAITING_ACK" and "not acknowledged" in error and next_attempt is not None


def test_conflicts_are_recorded_with_what_was_sent_and_what_gdf_holds(shop):
    shipped, cancelled, shipped_then_cancel = shop.add_orders(3)
    with shop.client() as client:
        for order in (shipped, shipped_then_cancel):
            client.ship(
                order["id"], ship_date=datetime.now(UTC), carrier="DHL", tracking_number="JD0001"
            )
        client.cancel(cancelled["id"])
    shop.drop(
        "late.csv",
        [
            row(shipped, shop, tracking="1ZOTHER"),
            row(cancelled, shop),
            row(shipped_then_cancel, shop, status="CANCELLED"),
        ],
    )

    counts = shop.ship()

    assert (counts["posted"], counts["conflicts"]) == (0, 3)
    conflicts = {
        line[0]: line
        for line in shop.query(
            "SELECT gdf_order_id, sent_status, sent_tracking_number, current_status, "
            "current_tracking_number FROM sync.status_update_conflicts"
        )
    }
    assert conflicts[shipped["id"]][1:] == ("SHIPPED", "1ZOTHER", "SHIPPED", "JD0001")
    assert conflicts[cancelled["id"]][3] == "CANCELLED"
    assert conflicts[shipped_then_cancel["id"]][1::2] == ("CANCELLED", "SHIPPED")
    assert shop.query("SELECT count(*) FROM oms.orders WHERE status <> 'OPEN'") == [(0,)]


def test_oms_shipments_rows_are_taken_once_and_bad_ones_say_why(shop):
    good, cancel, bad = shop.add_orders(3)
    shop.query(
        """
        INSERT INTO oms.shipments (order_number, status, carrier, tracking_number, ship_date)
        VALUES (?, 'SHIPPED', 'UPS', '1Z5', NULL), (?, 'CANCELLED', NULL, NULL, NULL),
               (?, 'SHIPPED', NULL, '1Z6', NULL), ('SO-404', 'SHIPPED', 'UPS', '', NULL)
        """,
        [shop.numbers[good["id"]], shop.numbers[cancel["id"]], shop.numbers[bad["id"]]],
    )

    counts = shop.ship()
    again = shop.ship()

    assert (counts["table_rows"], counts["queued"], counts["rows_rejected"]) == (4, 2, 2)
    assert counts["posted"] == 2 and again["table_rows"] == 0 and again["posted"] == 0
    assert shop.emulator.order(good["id"])["status"] == "SHIPPED"
    assert shop.emulator.order(cancel["id"])["status"] == "CANCELLED"
    marks = shop.query(
        "SELECT order_number, queued_at IS NOT NULL, update_key IS NOT NULL, rejected_reason "
        "FROM oms.shipments ORDER BY shipment_id"
    )
    assert [m[1] for m in marks] == [True] * 4
    assert [m[2] for m in marks] == [True, True, False, False]
    assert "carrier" in marks[2][3] and "no order" in marks[3][3]


class FakeClient:
    """Answers each ship call with the next scripted outcome (an order or an exception)."""

    def __init__(self, script):
        self.script = list(script)
        self.stats = ClientStats()

    def ship(self, order_id, **kwargs):
        self.stats.calls += 1
        answer = self.script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return {"id": order_id, "status": "SHIPPED"}

    def close(self):
        pass


class FakeGdf:
    def __init__(self, client):
        self.client = client

    @contextmanager
    def get_client(self):
        yield self.client


def test_posting_outcomes_for_400_transient_failure_and_a_repeat_after_a_crash(tmp_path):
    warehouse = Warehouse(
        database=str(tmp_path / "w.duckdb"), analytics_copy_path=str(tmp_path / "a.duckdb")
    )
    now = datetime.now(UTC).replace(microsecond=0)
    with warehouse.get_connection() as conn:
        for key in ("a", "b", "c"):
            conn.execute(
                """
                INSERT INTO sync.status_updates (update_key, gdf_order_id, order_number, status,
                    carrier, shipping_method, tracking_number, ship_date_sent, payload, source,
                    state, created_at, updated_at)
                VALUES (?, ?, ?, 'SHIPPED', 'UPS', '', '', ?, '{}', 'table', 'PENDING', ?, ?)
                """,
                [key, f"gdf-{key}", f"SO-{key}", now.isoformat(), now, now],
            )
    client = FakeClient(
        [
            BadRequestError("bad", api_message="shipDate is before the orderDate."),
            TransientError("still 503 after 8 attempts"),
            {},
        ]
    )

    first = post_due_updates(warehouse, FakeGdf(client), run_id="run-1")

    assert (first["rejected_by_gdf"], first["failed"], first["posted"]) == (1, 1, 1)
    with warehouse.get_connection() as conn:
        states = dict(conn.execute("SELECT update_key, state FROM sync.status_updates").fetchall())
        assert states == {"a": "REJECTED", "b": "FAILED", "c": "POSTED"}
        assert ledger.count_due(conn, now) == 0  # FAILED waits for its backoff
        assert ledger.count_due(conn, now + timedelta(minutes=2)) == 1
        # A crash after GoDataFeed took "c" but before it was recorded leaves it PENDING.
        conn.execute("UPDATE sync.status_updates SET state = 'PENDING' WHERE update_key = 'c'")

    client.script = [{}, {}]
    second = post_due_updates(warehouse, FakeGdf(client), run_id="run-2", ignore_backoff=True)

    assert (second["posted"], second["failed"]) == (2, 0)
    with warehouse.get_connection() as conn:
        rows = conn.execute(
            "SELECT update_key, state, attempts, last_error FROM sync.status_updates "
            "ORDER BY update_key"
        ).fetchall()
    assert rows == [
        ("a", "REJECTED", 1, "shipDate is before the orderDate."),
        ("b", "POSTED", 2, None),
        ("c", "POSTED", 2, None),
    ]


def test_the_same_update_from_a_later_file_is_not_sent_again(shop):
    (order,) = shop.add_orders(1)
    shop.drop("first.csv", [row(order, shop)])  # blank ship date: now
    shop.ship()
    shop.drop("second.csv", [row(order, shop), row(order, shop, by="gdf")])

    counts = shop.ship()

    assert (counts["queued"], counts["already_recorded"], counts["duplicates"]) == (0, 1, 1)
    assert counts["posted"] == 0
    assert shop.emulator.stats.status_update_calls[order["id"]] == 1
    assert list((shop.inbox / "processed").glob("*-second.csv"))
