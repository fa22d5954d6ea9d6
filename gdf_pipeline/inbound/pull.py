"""Pulling orders from GoDataFeed into the raw schema, with the cancellation cursor."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, NamedTuple

import duckdb
import msgspec

from gdf_pipeline.gdf import contract
from gdf_pipeline.gdf.client import ListedOrder
from gdf_pipeline.gdf.collector import collector_paused
from gdf_pipeline.gdf.jsontext import dumps_escaped
from gdf_pipeline.warehouse.rows import register_columns

CANCELLATION_CURSOR = "cancelled_orders_modified_since"

_RAW_COLUMNS = ("pull_id", "gdf_order_id", "gdf_status", "raw_json", "numbers_typed")

# An amount of 10**15 or more is out of range for the OMS (see the load's checks).
_AMOUNT_LIMIT = 1e15


class PulledOrder(NamedTuple):
    """What a pull holds of an order until it is stored: its JSON text and a few fields.

    A parsed order takes several times its text in Python objects: a first pull of 100,000
    orders held 1.3 GiB as parsed orders, and holds 0.5 GiB like this (measured with tracemalloc).
    """

    gdf_order_id: str | None
    gdf_status: str | None
    modified_at: datetime | None
    imported_at: datetime | None
    json_text: str
    numbers_typed: bool

    @classmethod
    def of(cls, order) -> PulledOrder:
        """An order as pulled: a ListedOrder, or any parsed JSON value (a replay's orders)."""
        # An order read from a listing page keeps the text it came as, digit for digit. A parsed
        # one is written in ASCII, where an unpaired surrogate or a NaN it may hold still fits.
        text = order.json_text if isinstance(order, ListedOrder) else dumps_escaped(order)
        try:
            fields, numbers_typed = _TYPED_DECODER.decode(text), True
        except (msgspec.DecodeError, msgspec.ValidationError):
            fields, numbers_typed = _order_fields(text), False
        if fields is None:
            return cls(None, None, None, None, text, False)
        return cls(
            fields.order_id if isinstance(fields.order_id, str) else None,
            fields.status if isinstance(fields.status, str) else None,
            _parse_time(fields.modified_at),
            _parse_time(fields.imported_at),
            text,
            numbers_typed,
        )


@dataclass
class Listing:
    """One listing read from GoDataFeed: which orders, since when, and what came back."""

    name: str
    orders: list  # PulledOrders as fetched; a replay's or a test's parsed orders
    modified_since: datetime | None = None
    api_calls: int = 0


def read_cancellation_cursor(conn: duckdb.DuckDBPyConnection) -> datetime | None:
    """Where the last run's CANCELLED listing ended; null before the OMS holds any order."""
    row = conn.execute(
        "SELECT value FROM sync.cursors WHERE name = ?", [CANCELLATION_CURSOR]
    ).fetchone()
    if row and row[0]:
        return datetime.fromisoformat(row[0])

    # No cursor yet: any order the OMS holds can only be cancelled after GoDataFeed imported it.
    row = conn.execute("SELECT min(imported_at) FROM oms.orders").fetchone()
    return row[0] if row and row[0] else None


def next_cancellation_cursor(
    previous: datetime | None,
    new_orders: list[PulledOrder],
    cancelled_orders: list[PulledOrder],
) -> datetime | None:
    """The modifiedSince for the next CANCELLED listing.

    The cursor is taken from GoDataFeed's own modifiedAt stamps, never from this machine's
    clock, so clock skew cannot skip a cancellation. modifiedSince is inclusive, so the newest
    stamp seen is listed again next time; re-applying a cancellation changes nothing.
    """
    stamps = [o.modified_at for o in cancelled_orders if o.modified_at is not None]
    if stamps:
        return max(stamps + ([previous] if previous else []))
    if previous is not None:
        return previous

    # First run: the orders pulled now can only be cancelled after GoDataFeed imported them.
    imported = [o.imported_at for o in new_orders if o.imported_at is not None]
    return min(imported) if imported else None


# TODO: stream pages to raw instead of holding the whole listing (about 0.5 GiB for a 100,000
# order backlog; a normal 15-minute pull is a few hundred). It can go when the client yields
# pages and the acknowledgements wait for the whole listing through the raw table instead.
def fetch_listings(
    client, cursor: datetime | None, on_page: Callable[[int, int], None] | None = None
) -> list[Listing]:
    """Reads every page of the NEW listing, then the CANCELLED listing since the cursor.

    Nothing is acknowledged until both listings are read in full: an acknowledgement during
    paging would move later orders forward and the next page would skip them.
    """
    calls_before = client.stats.calls
    new_orders = client.list_orders(status=contract.NEW, on_page=on_page, keep=PulledOrder.of)
    new = Listing(contract.NEW, new_orders)
    new.api_calls = client.stats.calls - calls_before
    listings = [new]

    if cursor is not None:
        calls_before = client.stats.calls
        cancelled = Listing(
            contract.CANCELLED,
            client.list_orders(
                status=contract.CANCELLED, modified_since=cursor, keep=PulledOrder.of
            ),
            modified_since=cursor,
        )
        cancelled.api_calls = client.stats.calls - calls_before
        listings.append(cancelled)
    return listings


def store_listings(
    conn: duckdb.DuckDBPyConnection, listings: list[Listing], run_id: str, cursor: datetime | None
) -> dict[str, int]:
    """Writes the listings to raw.pulls and raw.orders and moves the cursor, in one transaction.

    Returns the orders of each listing, and how many of them went to the quarantine instead
    (`unstorable`): orders whose text is not JSON the warehouse can hold.
    """
    pulled_at = datetime.now(UTC)
    pulls = []
    columns: dict[str, list] = {name: [] for name in _RAW_COLUMNS}
    with collector_paused():
        for listing in listings:
            pull_id = str(uuid.uuid4())
            pull = (pull_id, run_id, listing.name, listing.modified_since, pulled_at)
            pulls.append(pull + (len(listing.orders), listing.api_calls))
            for order in listing.orders:
                # Replays hand over orders read from a file, parsed.
                pulled = order if isinstance(order, PulledOrder) else PulledOrder.of(order)
                columns["pull_id"].append(pull_id)
                columns["gdf_order_id"].append(pulled.gdf_order_id)
                columns["gdf_status"].append(pulled.gdf_status)
                columns["raw_json"].append(pulled.json_text)
                columns["numbers_typed"].append(pulled.numbers_typed)

    conn.execute("BEGIN TRANSACTION")
    try:
        conn.executemany(
            "INSERT INTO raw.pulls (pull_id, run_id, listing, modified_since, pulled_at, "
            "order_count, api_calls) VALUES (?, ?, ?, ?, ?, ?, ?)",
            pulls,
        )
        register_columns(conn, "pulled_raw_orders", columns)
        # The run and the time are the same for every order, so they are not columns to convert.
        conn.execute(
            "INSERT INTO raw.orders BY NAME SELECT pull_id, gdf_order_id, gdf_status, raw_json, "
            f"numbers_typed, ? AS pulled_at, ? AS run_id FROM pulled_raw_orders WHERE {_STORABLE}",
            [pulled_at, run_id],
        )
        unstorable = len(conn.execute(_QUARANTINE_UNSTORABLE_SQL, [run_id]).fetchall())
        conn.unregister("pulled_raw_orders")
        if cursor is not None:
            conn.execute(
                "INSERT OR REPLACE INTO sync.cursors (name, value, updated_at) "
                "VALUES (?, ?, current_timestamp)",
                [CANCELLATION_CURSOR, cursor.isoformat()],
            )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise

    return {**{listing.name: len(listing.orders) for listing in listings}, "unstorable": unstorable}


# Text that DuckDB cannot hold as JSON, such as a string with an unpaired UTF-16 surrogate
# escape, would fail the whole pull, and every pull after it while GoDataFeed lists the order.
# Orders whose number types the pull read are strict JSON already (msgspec refuses the rest).
_STORABLE = "numbers_typed OR json_valid(raw_json)"

_QUARANTINE_UNSTORABLE_SQL = f"""
INSERT INTO sync.quarantine AS q BY NAME
SELECT md5(raw_json) AS quarantine_id, 'order' AS source, gdf_order_id,
    'the order is not JSON the warehouse can store (an unpaired UTF-16 surrogate escape, or '
        || 'broken syntax); kept here as received' AS reason,
    raw_json, current_timestamp AS first_seen_at, current_timestamp AS last_seen_at,
    1 AS seen_count, ? AS run_id
FROM pulled_raw_orders
WHERE NOT ({_STORABLE})
QUALIFY row_number() OVER (PARTITION BY md5(raw_json)) = 1
ON CONFLICT (quarantine_id) DO UPDATE SET
    last_seen_at = excluded.last_seen_at, seen_count = q.seen_count + 1
RETURNING 1
"""


# The fields the pull reads of every order: the listing's own ones, and the amounts and
# quantities, whose JSON types the load would otherwise find out by parsing every order's JSON
# a second time. An order decodes as _TypedOrder only when every amount is a JSON number or
# null and within the OMS's range (below 10**15), and every line's quantity a whole number;
# any other order is read as _OrderFields and goes through the load's full checks.
_ORDER_FIELDS = (
    ("order_id", Any, msgspec.field(default=None, name=contract.ORDER_ID_FIELD)),
    ("status", Any, msgspec.field(default=None, name=contract.STATUS_FIELD)),
    ("modified_at", Any, msgspec.field(default=None, name=contract.MODIFIED_AT_FIELD)),
    ("imported_at", Any, msgspec.field(default=None, name=contract.IMPORTED_AT_FIELD)),
)
# A float type takes integers too; its value is only compared, never kept.
_Amount = Annotated[float, msgspec.Meta(gt=-_AMOUNT_LIMIT, lt=_AMOUNT_LIMIT)] | None
_TypedLine = msgspec.defstruct(
    "_TypedLine",
    [("quantity", int), *((name, _Amount, None) for name in contract.ITEM_MONEY_FIELDS)],
    kw_only=True,
)
_TYPED_DECODER = msgspec.json.Decoder(
    msgspec.defstruct(
        "_TypedOrder",
        [
            *_ORDER_FIELDS,
            (contract.ITEMS_FIELD, list[_TypedLine]),
            *((name, _Amount, None) for name in contract.ORDER_MONEY_FIELDS),
        ],
        kw_only=True,
    )
)
_OrderFields = msgspec.defstruct("_OrderFields", _ORDER_FIELDS)
_FIELDS_DECODER = msgspec.json.Decoder(_OrderFields)


def _order_fields(text: str):
    """The listing fields of an order's text; None when the order is not a JSON object."""
    try:
        return _FIELDS_DECODER.decode(text)
    except msgspec.ValidationError:
        return None
    except msgspec.DecodeError:
        # Text the fast decoder refuses (a lone surrogate in a string) is parsed in full.
        order = json.loads(text)
        if not isinstance(order, dict):
            return None
        return _OrderFields(**{name: order.get(field.name) for name, _, field in _ORDER_FIELDS})


def _parse_time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
