"""The set-based load from raw orders to the OMS tables: shapes, exact money, quarantine reasons,
stable order numbers, upstream cancellations, and that a rerun adds nothing."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import duckdb
import pytest

from gdf_pipeline.gdf.client import ListedOrder
from gdf_pipeline.gdf.jsontext import dumps_exact
from gdf_pipeline.inbound.load import _row_ranges, load_orders
from gdf_pipeline.inbound.pull import Listing, PulledOrder, store_listings
from gdf_pipeline.warehouse import migrate


@pytest.fixture
def conn():
    connection = duckdb.connect()
    migrate(connection)
    yield connection
    connection.close()


def make_order(number: int, **changes) -> dict:
    order = {
        "id": f"{number:032x}",
        "storeId": "1042",
        "marketplace": "Amazon",
        "marketplaceOrderId": f"112-{number:07d}",
        "status": "NEW",
        "orderDate": "2026-12-03T09:15:27Z",
        "importedAt": f"2026-12-03T09:30:{number % 60:02d}Z",
        "modifiedAt": "2026-12-03T09:30:04Z",
        "currency": "USD",
        "customer": {"name": 'Dana "D", Whitfield\nSr.', "email": None, "phone": None},
        "shippingAddress": {
            "name": "Dana",
            "company": None,
            "address1": "12 Harbor Rd",
            "address2": "Apt 4, rear",
            "city": "Portland",
            "state": "ME",
            "postalCode": "04101",
            "country": "US",
            "phone": None,
        },
        "billingAddress": None,
        "subtotal": Decimal("59.98"),
        "shippingTotal": Decimal("5.00"),
        "taxTotal": Decimal("4.80"),
        "discountTotal": Decimal("0.00"),
        "orderTotal": Decimal("69.78"),
        "items": [
            {
                "itemId": f"{number}-1",
                "sku": "MUG-BLK-12",
                "marketplaceItemId": None,
                "title": "Black mug, 12 oz ☕",
                "quantity": 2,
                "unitPrice": Decimal("29.99"),
                "taxAmount": Decimal("4.80"),
                "shippingAmount": Decimal("5.00"),
                "discountAmount": Decimal("0.00"),
                "giftWrap": {"unknown": True},
            }
        ],
        "loyaltyTier": ["unknown", "field"],
    }
    order.update(changes)
    return order


def pull_and_load(conn, orders, run_id="run-1", cancelled=None):
    listings = [Listing("NEW", orders)]
    if cancelled is not None:
        listings.append(Listing("CANCELLED", cancelled))
    store_listings(conn, listings, run_id, None)
    return load_orders(conn, run_id, "SO-")


def test_valid_order_lands_with_lines_acknowledgement_record_and_exact_money(conn):
    big = make_order(
        2,
        currency="KWD",
        subtotal=Decimal("12345678901.123"),
        orderTotal=Decimal("12345678901.123"),
        shippingTotal=Decimal("0"),
        taxTotal=Decimal("0"),
        discountTotal=Decimal("0"),
        items=[{"itemId": "k", "quantity": 1, "unitPrice": Decimal("12345678901.123")}],
    )
    counts = pull_and_load(conn, [make_order(1), big])

    assert counts["loaded"] == 2 and counts["quarantined"] == 0
    rows = conn.execute(
        "SELECT order_number, currency, subtotal, order_total, totals_consistent, customer_name, "
        "ship_address2, bill_name FROM oms.orders ORDER BY order_number"
    ).fetchall()
    assert rows[0] == (
        "SO-00000001",
        "USD",
        Decimal("59.98"),
        Decimal("69.78"),
        True,
        'Dana "D", Whitfield\nSr.',
        "Apt 4, rear",
        None,
    )
    assert rows[1][1:4] == ("KWD", Decimal("12345678901.123"), Decimal("12345678901.123"))
    lines = conn.execute(
        "SELECT line_number, quantity, unit_price, line_subtotal, title FROM oms.order_lines "
        "WHERE order_number = 'SO-00000001'"
    ).fetchall()
    assert lines == [(1, 2, Decimal("29.99"), Decimal("59.98"), "Black mug, 12 oz ☕")]
    acknowledgements = conn.execute(
        "SELECT order_number, status FROM sync.acknowledgements ORDER BY 1"
    ).fetchall()
    assert acknowledgements == [("SO-00000001", "PENDING"), ("SO-00000002", "PENDING")]


@pytest.mark.parametrize(
    "changes, reason",
    [
        pytest.param({"id": None}, "missing id", id="no-id"),
        pytest.param({"items": []}, "the order has no lines", id="no-lines"),
        pytest.param({"items": None}, "the order has no lines", id="null-lines"),
        pytest.param({"subtotal": "abc"}, "subtotal is not a number", id="money-text"),
        pytest.param({"taxTotal": True}, "taxTotal is not a number", id="money-bool"),
        pytest.param({"orderTotal": None}, "missing orderTotal", id="money-missing"),
        pytest.param(
            {"subtotal": Decimal("59.981")}, "subtotal has more decimals", id="too-precise"
        ),
        pytest.param({"orderDate": "2026-12-03"}, "orderDate is not a date-time", id="date-only"),
        pytest.param({"orderDate": "yesterday"}, "orderDate is not a date-time", id="bad-date"),
        pytest.param({"currency": None}, "missing or invalid currency", id="no-currency"),
        pytest.param(
            {"items": [{"itemId": "x", "quantity": "2", "unitPrice": Decimal("1")}]},
            "line 1: quantity must be a whole number",
            id="quantity-text",
        ),
        pytest.param(
            {"items": [{"itemId": "x", "quantity": 1, "unitPrice": {"amount": 1}}]},
            "line 1: unitPrice is not a number",
            id="price-object",
        ),
    ],
)
def test_malformed_order_is_quarantined_with_its_reason_and_the_rest_loads(conn, changes, reason):
    counts = pull_and_load(conn, [make_order(1), make_order(2, **changes)])

    assert counts["loaded"] == 1 and counts["quarantined"] == 1
    (stored_reason, raw_json) = conn.execute(
        "SELECT reason, raw_json FROM sync.quarantine"
    ).fetchone()
    assert reason in stored_reason
    assert '"marketplaceOrderId": "112-0000002"' in raw_json
    assert conn.execute("SELECT count(*) FROM sync.acknowledgements").fetchone()[0] == 1


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"subtotal": "12.5"},
        {"taxTotal": True},
        {"orderTotal": None},
        {"shippingTotal": Decimal("1.001")},
        {"discountTotal": Decimal("1E+15")},
        {"items": [{"itemId": "x", "quantity": 1.5, "unitPrice": Decimal("2.00")}]},
        {"items": [{"itemId": "x", "quantity": 2, "unitPrice": "2.00"}]},
        {"items": [{"itemId": "x", "quantity": 2}]},
        {"items": [{"itemId": "x", "quantity": 2, "unitPrice": 2, "taxAmount": False}]},
    ],
    ids=repr,
)
def test_the_pulls_number_types_give_the_same_reasons_as_the_json(tmp_path, changes):
    # The same order loaded twice: once with the types the pull recorded, once with them
    # unknown, as for raw rows from before they were recorded, so the load parses the JSON.
    outcomes = []
    for known in (True, False):
        conn = duckdb.connect(str(tmp_path / f"{known}.duckdb"))
        migrate(conn)
        store_listings(conn, [Listing("NEW", [make_order(1, **changes)])], "run-1", None)
        if not known:
            conn.execute("UPDATE raw.orders SET numbers_typed = NULL")
        counts = load_orders(conn, "run-1", "SO-")
        reasons = conn.execute("SELECT reason FROM sync.quarantine").fetchall()
        outcomes.append((counts["loaded"], reasons))
        conn.close()

    assert outcomes[0] == outcomes[1]
    loaded, reasons = outcomes[0]
    assert (loaded, len(reasons)) == ((1, 0) if not changes else (0, 1))


def test_the_pull_records_whether_amounts_and_quantities_are_json_numbers(conn):
    orders = [
        make_order(1),
        make_order(2, subtotal="12.5"),
        make_order(3, items=[{"itemId": "x", "quantity": True, "unitPrice": 1}]),
        "just a string",
    ]
    store_listings(conn, [Listing("NEW", orders)], "run-1", None)

    typed = conn.execute("SELECT numbers_typed FROM raw.orders ORDER BY gdf_order_id").fetchall()
    assert typed == [(True,), (False,), (False,), (False,)]


def test_an_order_the_warehouse_cannot_store_is_quarantined_and_the_pull_goes_on(conn):
    # An unpaired surrogate escape: Python reads it, DuckDB's JSON refuses it. Stored with the
    # rest, it failed every pull for as long as GoDataFeed listed the order.
    good = ListedOrder("o1", datetime.min, dumps_exact(make_order(1)))
    broken_text = dumps_exact(make_order(2)).replace("Black mug", "Black mug \\ud83d")
    broken = ListedOrder("o2", datetime.min, broken_text)
    pulled = [PulledOrder.of(good), PulledOrder.of(broken)]

    for run in ("run-1", "run-2"):
        stored = store_listings(conn, [Listing("NEW", pulled)], run, None)
        assert stored == {"NEW": 2, "unstorable": 1}
        counts = load_orders(conn, run, "SO-")

    assert counts["already_known"] == 1
    assert conn.execute("SELECT count(*) FROM oms.orders").fetchone()[0] == 1
    reason, raw_json, seen, order_id = conn.execute(
        "SELECT reason, raw_json, seen_count, gdf_order_id FROM sync.quarantine"
    ).fetchone()
    assert reason.startswith("the order is not JSON the warehouse can store")
    assert raw_json == broken_text and seen == 2 and order_id == make_order(2)["id"]


def test_an_order_that_is_not_an_object_is_quarantined(conn):
    counts = pull_and_load(conn, ["just a string", make_order(1)])

    assert counts["loaded"] == 1
    assert conn.execute("SELECT reason FROM sync.quarantine").fetchone()[0] == (
        "the order is not a JSON object"
    )


def test_identical_orders_without_an_id_are_quarantined_once_and_counted_per_load(conn):
    no_id = make_order(7)
    del no_id["id"]
    counts = pull_and_load(conn, [no_id, dict(no_id), "just a string", "just a string"])

    assert counts["quarantined"] == 2
    assert conn.execute(
        "SELECT reason, seen_count FROM sync.quarantine ORDER BY reason"
    ).fetchall() == [("missing id", 1), ("the order is not a JSON object", 1)]

    pull_and_load(conn, [no_id], "run-2")
    assert conn.execute(
        "SELECT seen_count FROM sync.quarantine WHERE reason = 'missing id'"
    ).fetchone() == (2,)


def test_rerun_adds_nothing_and_keeps_order_numbers(conn):
    orders = [make_order(n) for n in range(1, 6)] + [make_order(9, items=[])]
    pull_and_load(conn, orders, "run-1")
    first = conn.execute("SELECT gdf_order_id, order_number FROM oms.orders").fetchall()

    counts = pull_and_load(conn, list(reversed(orders)), "run-2")

    assert counts["loaded"] == 0 and counts["already_known"] == 5
    assert conn.execute("SELECT gdf_order_id, order_number FROM oms.orders").fetchall() == first
    assert conn.execute("SELECT count(*), max(seen_count) FROM sync.quarantine").fetchone() == (
        1,
        2,
    )


def test_order_numbers_continue_from_the_highest(conn):
    pull_and_load(conn, [make_order(1), make_order(2)], "run-1")
    pull_and_load(conn, [make_order(3)], "run-2")

    numbers = conn.execute("SELECT order_number FROM oms.orders ORDER BY 1").fetchall()
    assert [n for (n,) in numbers] == ["SO-00000001", "SO-00000002", "SO-00000003"]


def test_duplicates_within_a_pull_load_once(conn):
    counts = pull_and_load(conn, [make_order(1), make_order(1), make_order(2)])

    assert counts["loaded"] == 2
    assert conn.execute("SELECT count(*) FROM oms.order_lines").fetchone()[0] == 2


def test_inconsistent_totals_are_flagged_not_dropped(conn):
    counts = pull_and_load(conn, [make_order(1, orderTotal=Decimal("69.79"))])

    assert counts["loaded"] == 1 and counts["totals_flagged"] == 1
    assert conn.execute("SELECT totals_consistent FROM oms.orders").fetchone() == (False,)


def test_upstream_cancellation_updates_the_oms_and_stops_the_acknowledgement(conn):
    pull_and_load(conn, [make_order(1), make_order(2)], "run-1")
    cancelled = make_order(1, status="CANCELLED", modifiedAt="2026-12-03T10:00:00Z")

    counts = pull_and_load(conn, [], "run-2", cancelled=[cancelled])

    assert counts["cancelled"] == 1
    status = conn.execute(
        "SELECT o.status, o.cancelled_at IS NOT NULL, a.status FROM oms.orders o "
        "JOIN sync.acknowledgements a USING (gdf_order_id) ORDER BY o.order_number"
    ).fetchall()
    assert status == [("CANCELLED", True, "CANCELLED"), ("OPEN", False, "PENDING")]


def test_a_replayed_copy_wins_over_the_listed_one_and_loads_once(conn):
    store_listings(conn, [Listing("REPLAY", [make_order(1)])], "replay-1", None)
    store_listings(conn, [Listing("NEW", [make_order(1, items=[])])], "run-1", None)

    counts = load_orders(conn, "run-1", "SO-")

    assert counts["loaded"] == 1 and counts["quarantined"] == 0
    assert conn.execute("SELECT count(*) FROM oms.order_lines").fetchone() == (1,)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("rows", [[], [7], [3, 4, 9, 10, 11, 40]], ids=repr)
def test_the_parse_ranges_cover_every_batch_row_once(conn, threads, rows):
    conn.execute(f"SET threads = {threads}")
    conn.execute("CREATE TEMP TABLE load_batch (raw_row BIGINT)")
    conn.execute("INSERT INTO load_batch SELECT unnest(?::BIGINT[])", [rows])

    ranges = _row_ranges(conn)

    covering = [[row for first, last in ranges if first <= row <= last] for row in rows]
    assert all(len(found) == 1 for found in covering)
    assert len(ranges) <= threads
