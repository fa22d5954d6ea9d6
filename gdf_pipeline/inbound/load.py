"""Transforming pulled orders into the OMS tables, set-based in DuckDB, in one transaction.

Every step is SQL over the batch of raw rows that no load has consumed yet. The OMS rows, the
acknowledgement records, the quarantine and the "consumed" mark on the pulls commit together,
so a crash anywhere leaves either all of a batch or none of it, and a rerun picks up the same
raw rows again. Money is parsed by json_transform straight into DECIMAL, never via a float.
"""

from __future__ import annotations

import json

import duckdb

from gdf_pipeline.gdf import contract

_NUMBER_TYPES = "('UBIGINT', 'BIGINT', 'DOUBLE', 'HUGEINT')"
_MONEY = "DECIMAL(38, 9)"

# What json_transform reads out of each order. Unknown fields are dropped here and kept in raw.
_ADDRESS = {field: "VARCHAR" for field in contract.ADDRESS_FIELDS}
_ORDER_SHAPE = {
    "id": "VARCHAR",
    "storeId": "VARCHAR",
    "marketplace": "VARCHAR",
    "marketplaceOrderId": "VARCHAR",
    "status": "VARCHAR",
    "orderDate": "VARCHAR",
    "importedAt": "VARCHAR",
    "modifiedAt": "VARCHAR",
    "cancelledAt": "VARCHAR",
    "currency": "VARCHAR",
    "customer": {field: "VARCHAR" for field in contract.CUSTOMER_FIELDS},
    "shippingAddress": _ADDRESS,
    "billingAddress": _ADDRESS,
    "shippingMethod": "VARCHAR",
    "paymentMethod": "VARCHAR",
    **{field: _MONEY for field in contract.ORDER_MONEY_FIELDS},
    "items": [
        {
            "itemId": "VARCHAR",
            "sku": "VARCHAR",
            "marketplaceItemId": "VARCHAR",
            "title": "VARCHAR",
            "quantity": "DOUBLE",
            **{field: _MONEY for field in contract.ITEM_MONEY_FIELDS},
        }
    ],
}
# The same fields as raw JSON values, so that their JSON types can be checked: json_transform
# alone would turn "12.5" or true into a number without complaint.
_TYPE_SHAPE = {
    **{field: "JSON" for field in ("id", *contract.ORDER_MONEY_FIELDS)},
    "items": [{field: "JSON" for field in ("quantity", *contract.ITEM_MONEY_FIELDS)}],
}


def _minor_units_sql(currency: str) -> str:
    """SQL for how many minor units make one major unit of the currency (1, 100 or 1000)."""
    cases = " ".join(
        f"WHEN '{code}' THEN {10**digits}"
        for code, digits in contract.CURRENCY_MINOR_DIGITS.items()
    )
    return f"(CASE upper({currency}) {cases} ELSE 100 END)"


def _money_problem(value: str, json_value: str, label: str, optional: bool = False) -> str:
    """SQL giving a reason when a money value is missing, not a number, or too precise.

    On orders whose numbers the pull found typed, an amount is a JSON number in range or null,
    so its JSON type is not looked at (`ty` is not even parsed for them).
    """
    missing = f"""CASE WHEN numbers_typed THEN {value} IS NULL
        ELSE {json_value} IS NULL OR json_type({json_value}) = 'NULL' END"""
    return f"""CASE
        WHEN {missing} THEN {"NULL" if optional else f"'missing {label}'"}
        WHEN NOT numbers_typed
            AND (json_type({json_value}) NOT IN {_NUMBER_TYPES} OR {value} IS NULL)
            THEN '{label} is not a number: ' || left({json_value}::VARCHAR, 40)
        WHEN {value} * minor_units <> trunc({value} * minor_units)
            THEN '{label} has more decimals than ' || o.currency || ' allows'
        WHEN abs({value}) >= 1e15 THEN '{label} is out of range'
        END"""


def _line_checks() -> list[str]:
    """SQL for each check of a line `it` (number `n`): a reason naming the line, or null."""
    quantity = "ty.items[n].quantity"
    checks = [
        f"CASE WHEN (NOT numbers_typed AND ({quantity} IS NULL "
        f"OR json_type({quantity}) NOT IN ('UBIGINT', 'BIGINT'))) "
        "OR it.quantity < 1 OR it.quantity > 1000000 "
        "THEN 'line ' || n || ': quantity must be a whole number from 1' END"
    ]
    for field in contract.ITEM_MONEY_FIELDS:
        problem = _money_problem(
            f"it.{field}", f"ty.items[n].{field}", field, optional=field != "unitPrice"
        )
        checks.append(problem.replace(f"'{field}", f"'line ' || n || ': {field}"))
    return checks


def _parse_time(expr: str) -> str:
    # A date without a time is no order time: GoDataFeed always sends date and time.
    return (
        f"CASE WHEN regexp_matches({expr}, '^\\d{{4}}-\\d{{2}}-\\d{{2}}[T ]\\d{{2}}:\\d{{2}}') "
        f"THEN TRY_CAST({expr} AS TIMESTAMPTZ) END"
    )


_BATCH_SQL = """
CREATE OR REPLACE TEMP TABLE load_pulls AS
    SELECT pull_id, listing, pulled_at FROM raw.pulls WHERE transformed_at IS NULL;

-- The raw rows to load, by row id: their JSON is read once, where it is parsed. One row per
-- order to insert (an operator's REPLAY before a NEW listing's, then the latest), and one per
-- upstream cancellation. Rows without an id each stand alone; the quarantine counts identical
-- ones once.
CREATE OR REPLACE TEMP TABLE load_batch AS
    SELECT r.rowid AS raw_row, r.gdf_order_id, p.listing
    FROM raw.orders r JOIN load_pulls p USING (pull_id)
    WHERE r.pulled_at >= (SELECT min(pulled_at) FROM load_pulls)
    QUALIFY row_number() OVER (
        PARTITION BY p.listing = 'CANCELLED', coalesce(r.gdf_order_id, 'row ' || r.rowid)
        ORDER BY p.listing = 'REPLAY' DESC, r.pulled_at DESC) = 1;
"""


# TODO: parse each order's JSON once instead of twice where the pull could not record its number
# types (older raw rows, orders with a malformed amount). It can go when DuckDB's json_transform
# can report a value's JSON type and its exact DECIMAL in one pass.
def _parsed_sql(row_ranges: list[tuple[int, int]]) -> str:
    """The parse and checks of the batch, one UNION ALL branch per range of raw row ids.

    DuckDB scans a stored row group (122,880 rows) on one thread, so a batch smaller than that
    would be parsed on one core however many there are: a branch per thread parses it on all.
    """
    order_shape = json.dumps(_ORDER_SHAPE).replace("'", "''")
    type_shape = json.dumps(_TYPE_SHAPE).replace("'", "''")
    order_checks = [
        "CASE WHEN gdf_order_id IS NULL OR trim(gdf_order_id) = '' THEN 'missing id' END",
        "CASE WHEN coalesce(trim(o.marketplace), '') = '' THEN 'missing marketplace' END",
        "CASE WHEN NOT coalesce(regexp_full_match(o.currency, '[A-Z]{3}'), false) "
        "THEN 'missing or invalid currency' END",
        f"CASE WHEN {_parse_time('o.orderDate')} IS NULL "
        "THEN 'orderDate is not a date-time: ' || coalesce(left(o.orderDate, 40), 'null') END",
        "CASE WHEN o.items IS NULL OR len(o.items) = 0 THEN 'the order has no lines' END",
        *(
            _money_problem(f"o.{field}", f"ty.{field}", field)
            for field in contract.ORDER_MONEY_FIELDS
        ),
    ]
    line_checks = _line_checks()

    def branch(first: int, last: int) -> str:
        return f"""
    SELECT b.gdf_order_id, b.listing, r.raw_json,
        -- store_listings sets an id only on orders that are JSON objects, so only rows
        -- without one need the document parsed once more for its type.
        CASE WHEN b.gdf_order_id IS NOT NULL THEN 'OBJECT' ELSE json_type(r.raw_json) END
            AS root_type,
        json_transform(r.raw_json, '{order_shape}') AS o,
        coalesce(r.numbers_typed, false) AS numbers_typed,
        -- The JSON types of the amounts and quantities, where the pull did not record them.
        CASE WHEN NOT coalesce(r.numbers_typed, false)
            THEN json_transform(r.raw_json, '{type_shape}') END AS ty
    FROM raw.orders r JOIN load_batch b ON r.rowid = b.raw_row
    WHERE r.pulled_at >= (SELECT min(pulled_at) FROM load_pulls)
        AND r.rowid BETWEEN {first:d} AND {last:d}"""

    branches = "\n    UNION ALL".join(branch(first, last) for first, last in row_ranges)
    return f"""
CREATE OR REPLACE TEMP TABLE load_parsed AS
WITH parsed AS ({branches}
), priced AS (
    -- Worked out once per order: inside the checks it was worked out again for every amount
    -- of every line, which took most of the load's time.
    SELECT *, {_minor_units_sql("o.currency")} AS minor_units FROM parsed
), checked AS (
SELECT gdf_order_id, raw_json, listing, o,
    {_parse_time("o.orderDate")} AS order_date,
    {_parse_time("o.importedAt")} AS imported_at,
    {_parse_time("o.modifiedAt")} AS modified_at,
    {_parse_time("o.cancelledAt")} AS cancelled_at,
    CASE WHEN root_type IS DISTINCT FROM 'OBJECT' THEN ['the order is not a JSON object']
    -- Most orders pass every check: finding that out takes one value per check, where listing
    -- the reasons builds lists for every order and line.
    WHEN coalesce({", ".join(order_checks)}) IS NULL
        AND coalesce(list_bool_and(list_transform(o.items,
            lambda it, n: coalesce({", ".join(line_checks)}) IS NULL)), true)
        THEN []
    ELSE list_filter(list_concat([{", ".join(order_checks)}],
        flatten(list_transform(o.items, lambda it, n: [{", ".join(line_checks)}]))),
        lambda x: x IS NOT NULL)
    END AS problems
FROM priced
)
-- The JSON is kept for the quarantine only: copying every order's text cost a tenth of a load.
SELECT * EXCLUDE (raw_json), CASE WHEN len(problems) > 0 THEN raw_json END AS raw_json
FROM checked;
"""


def _address_columns(source: str, prefix: str) -> str:
    names = {
        "name": "name",
        "company": "company",
        "address1": "address1",
        "address2": "address2",
        "city": "city",
        "state": "state",
        "postalCode": "postal_code",
        "country": "country",
        "phone": "phone",
    }
    return ",\n        ".join(f"{source}.{field} AS {prefix}_{col}" for field, col in names.items())


# Added to every lookup of a batch's orders among the OMS orders (true wherever the lookup
# matches): it bounds the OMS side to the batch's ids, which DuckDB then finds with one scan of
# a column. Without it each load built a hash table of every OMS order, a cost that grew with
# history and was most of a sync that found nothing new.
_IN_BATCH = "x.gdf_order_id IN (SELECT gdf_order_id FROM load_parsed)"

# Numbers are given over the ids alone: a window that sorts whole parsed orders costs several
# times more, and so does copying them. Each id is in one NEW or REPLAY row of a batch (see
# _BATCH_SQL), which the inserts find again through _NEW_ORDERS.
_NEW_ORDERS_SQL = f"""
CREATE OR REPLACE TEMP TABLE load_new AS
SELECT gdf_order_id,
    ? || lpad(CAST(seq AS VARCHAR), 8, '0') AS order_number, seq AS order_seq
FROM (
    SELECT gdf_order_id,
        row_number() OVER (ORDER BY imported_at NULLS LAST, gdf_order_id)
            + (SELECT coalesce(max(order_seq), 0) FROM oms.orders) AS seq
    FROM load_parsed p
    WHERE p.listing IN ('NEW', 'REPLAY') AND len(p.problems) = 0
      AND NOT EXISTS (SELECT 1 FROM oms.orders x WHERE x.gdf_order_id = p.gdf_order_id
                      AND {_IN_BATCH})
)
"""

# The parsed orders that get a number, with it.
_NEW_ORDERS = """load_new JOIN load_parsed p USING (gdf_order_id)
    WHERE p.listing IN ('NEW', 'REPLAY')"""

_INSERT_ORDERS_SQL = f"""
INSERT INTO oms.orders BY NAME
SELECT order_number, order_seq, gdf_order_id,
    o.storeId AS store_id, o.marketplace, o.marketplaceOrderId AS marketplace_order_id,
    'OPEN' AS status, order_date, imported_at, modified_at AS gdf_modified_at,
    o.currency,
    o.subtotal, o.shippingTotal AS shipping_total, o.taxTotal AS tax_total,
    o.discountTotal AS discount_total, o.orderTotal AS order_total,
    (o.subtotal = list_sum(list_transform(o.items, lambda it: it.quantity::BIGINT * it.unitPrice))
        AND o.orderTotal = o.subtotal + o.shippingTotal + o.taxTotal - o.discountTotal)
        AS totals_consistent,
    o.shippingMethod AS shipping_method, o.paymentMethod AS payment_method,
    o.customer.name AS customer_name, o.customer.email AS customer_email,
    o.customer.phone AS customer_phone,
    {_address_columns("o.shippingAddress", "ship")},
    {_address_columns("o.billingAddress", "bill")},
    current_timestamp AS loaded_at, ? AS load_run_id, current_timestamp AS updated_at
FROM {_NEW_ORDERS}
"""

_INSERT_LINES_AND_ACKNOWLEDGEMENTS_SQL = f"""
INSERT INTO oms.order_lines BY NAME
SELECT order_number, line_number,
    item.itemId AS gdf_item_id, item.sku, item.marketplaceItemId AS marketplace_item_id,
    item.title, item.quantity::INTEGER AS quantity, item.unitPrice AS unit_price,
    item.quantity::BIGINT * item.unitPrice AS line_subtotal,
    coalesce(item.taxAmount, 0) AS tax_amount,
    coalesce(item.shippingAmount, 0) AS shipping_amount,
    coalesce(item.discountAmount, 0) AS discount_amount
FROM (
    SELECT order_number, unnest(o.items) AS item, generate_subscripts(o.items, 1) AS line_number
    FROM {_NEW_ORDERS}
);

INSERT INTO sync.acknowledgements BY NAME
SELECT gdf_order_id, order_number, 'PENDING' AS status,
    current_timestamp AS created_at, current_timestamp AS updated_at
FROM load_new;

UPDATE sync.quarantine SET resolved_at = current_timestamp
WHERE resolved_at IS NULL AND gdf_order_id IN (SELECT gdf_order_id FROM load_new);
"""

_QUARANTINE_SQL = f"""
INSERT INTO sync.quarantine AS q BY NAME
SELECT md5(raw_json::VARCHAR) AS quarantine_id, 'order' AS source, gdf_order_id,
    array_to_string(problems, '; ') AS reason, raw_json::VARCHAR AS raw_json,
    current_timestamp AS first_seen_at, current_timestamp AS last_seen_at,
    1 AS seen_count, ? AS run_id
FROM load_parsed p
WHERE len(p.problems) > 0
  AND NOT EXISTS (SELECT 1 FROM oms.orders x WHERE x.gdf_order_id = p.gdf_order_id
                  AND {_IN_BATCH})
QUALIFY row_number() OVER (PARTITION BY md5(raw_json::VARCHAR)) = 1
ON CONFLICT (quarantine_id) DO UPDATE SET
    last_seen_at = excluded.last_seen_at, seen_count = q.seen_count + 1;
"""

# Orders GoDataFeed reports CANCELLED since the cursor; only OMS orders still open change.
_CANCELLED_BATCH_SQL = """
CREATE OR REPLACE TEMP TABLE load_cancelled AS
SELECT gdf_order_id, coalesce(cancelled_at, modified_at, current_timestamp) AS cancelled_at,
    modified_at
FROM load_parsed
WHERE listing = 'CANCELLED' AND o.status = 'CANCELLED' AND gdf_order_id IS NOT NULL;
"""

_CANCELLATIONS_SQL = """
UPDATE oms.orders SET status = 'CANCELLED', cancelled_at = c.cancelled_at,
    gdf_modified_at = c.modified_at, updated_at = current_timestamp
FROM load_cancelled c
WHERE oms.orders.gdf_order_id = c.gdf_order_id AND oms.orders.status = 'OPEN';

UPDATE sync.acknowledgements SET status = 'CANCELLED', updated_at = current_timestamp,
    last_error = 'cancelled at GoDataFeed before it was acknowledged'
FROM load_cancelled c
WHERE sync.acknowledgements.gdf_order_id = c.gdf_order_id
  AND sync.acknowledgements.status = 'PENDING';
"""

_COUNTS_SQL = f"""
SELECT
    (SELECT count(*) FROM load_parsed WHERE listing IN ('NEW', 'REPLAY')) AS distinct_new,
    (SELECT count(*) FROM load_new) AS loaded,
    (SELECT coalesce(sum(len(o.items)), 0) FROM {_NEW_ORDERS}) AS lines_loaded,
    (SELECT count(*) FROM load_parsed p WHERE listing IN ('NEW', 'REPLAY') AND len(problems) = 0
        AND EXISTS (SELECT 1 FROM oms.orders x WHERE x.gdf_order_id = p.gdf_order_id
                    AND {_IN_BATCH} AND x.load_run_id IS DISTINCT FROM ?)) AS already_known,
    -- As many as the quarantine rows this load wrote or counted again.
    (SELECT count(DISTINCT md5(raw_json::VARCHAR)) FROM load_parsed p WHERE len(problems) > 0
        AND NOT EXISTS (SELECT 1 FROM oms.orders x WHERE x.gdf_order_id = p.gdf_order_id
                        AND {_IN_BATCH})) AS quarantined,
    (SELECT count(*) FROM load_cancelled) AS cancellations_seen,
    (SELECT count(*) FROM oms.orders x JOIN load_new n USING (gdf_order_id)
        WHERE NOT x.totals_consistent) AS totals_flagged
"""


# The temporary tables of a large backlog's load hold several times its raw JSON: 1,000,000
# orders took 8 GB. Bounded, DuckDB spills them to a file beside the warehouse instead, at no
# cost in speed. Insertion order is not kept while loading either: nothing reads the OMS tables
# in insertion order, and keeping it costs memory on every large insert.
LOAD_MEMORY_LIMIT = "1.5GB"


def load_orders(conn: duckdb.DuckDBPyConnection, run_id: str, order_number_prefix: str) -> dict:
    """Loads every raw order no load has consumed yet; returns the counts of what happened."""
    conn.execute("SET TimeZone = 'UTC'")
    restore = [
        _restoring_statement(conn, "memory_limit"),
        _restoring_statement(conn, "preserve_insertion_order"),
    ]
    conn.execute(f"SET memory_limit = '{LOAD_MEMORY_LIMIT}'")
    conn.execute("SET preserve_insertion_order = false")
    try:
        return _load(conn, run_id, order_number_prefix)
    finally:
        for statement in restore:
            conn.execute(statement)


def _restoring_statement(conn: duckdb.DuckDBPyConnection, name: str) -> str:
    """The statement that gives a setting back its current value."""
    # RESET when the value is DuckDB's default: a memory limit reads back rounded, and set
    # from that text it would shrink a little with every load.
    current = conn.execute("SELECT current_setting(?)", [name]).fetchone()[0]
    conn.execute(f"RESET {name}")
    if conn.execute("SELECT current_setting(?)", [name]).fetchone()[0] == current:
        return f"RESET {name}"
    return f"SET {name} = '{current}'"


def _load(conn: duckdb.DuckDBPyConnection, run_id: str, order_number_prefix: str) -> dict:
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(_BATCH_SQL)
        conn.execute(_parsed_sql(_row_ranges(conn)))
        conn.execute(_NEW_ORDERS_SQL, [order_number_prefix])
        conn.execute(_INSERT_ORDERS_SQL, [run_id])
        conn.execute(_INSERT_LINES_AND_ACKNOWLEDGEMENTS_SQL)
        conn.execute(_QUARANTINE_SQL, [run_id])
        conn.execute(_CANCELLED_BATCH_SQL)
        cancelled = _open_orders_cancelled(conn)
        conn.execute(_CANCELLATIONS_SQL)
        counts = {**_fetch_counts(conn, run_id), "cancelled": cancelled}
        conn.execute(
            "UPDATE raw.pulls SET transformed_at = current_timestamp "
            "WHERE pull_id IN (SELECT pull_id FROM load_pulls)"
        )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return counts


def _row_ranges(conn: duckdb.DuckDBPyConnection) -> list[tuple[int, int]]:
    """The batch's raw row ids cut into one range per DuckDB thread, each about as long."""
    first, last, threads = conn.execute(
        "SELECT coalesce(min(raw_row), 0), coalesce(max(raw_row), -1), "
        "current_setting('threads') FROM load_batch"
    ).fetchone()
    if last < first:
        return [(0, -1)]  # an empty batch: one branch, which reads nothing

    step = -(-(last - first + 1) // max(1, threads))
    return [(start, min(start + step - 1, last)) for start in range(first, last + 1, step)]


def _open_orders_cancelled(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute(
        "SELECT count(*) FROM oms.orders JOIN load_cancelled USING (gdf_order_id) "
        "WHERE status = 'OPEN'"
    ).fetchone()[0]


def _fetch_counts(conn: duckdb.DuckDBPyConnection, run_id: str) -> dict:
    cursor = conn.execute(_COUNTS_SQL, [run_id])
    names = [column[0] for column in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))
