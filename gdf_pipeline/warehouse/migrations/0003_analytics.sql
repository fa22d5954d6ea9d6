-- Analyst and operator views. They are also recreated in the published analytics copy.

CREATE SCHEMA IF NOT EXISTS analytics;

-- Each order's way through the pipeline, with the minutes between its steps.
CREATE VIEW analytics.order_lifecycle AS
WITH posted AS (
    SELECT order_number, max(posted_at) AS status_posted_at
    FROM sync.status_updates
    WHERE state = 'POSTED'
    GROUP BY order_number
)
SELECT
    o.order_number,
    o.gdf_order_id,
    o.marketplace,
    o.marketplace_order_id,
    o.currency,
    o.order_total,
    o.status,
    a.status AS acknowledgement_status,
    CASE
        WHEN o.status = 'CANCELLED' THEN 'cancelled'
        WHEN o.status = 'SHIPPED' AND p.status_posted_at IS NOT NULL THEN 'shipped'
        WHEN o.status = 'SHIPPED' THEN 'shipment not yet posted'
        WHEN a.status = 'ACKNOWLEDGED' THEN 'awaiting shipment'
        WHEN a.status = 'PENDING' THEN 'awaiting acknowledgement'
        ELSE 'acknowledgement ' || lower(a.status)
    END AS stage,
    o.order_date AS ordered_at,
    o.imported_at,
    o.loaded_at,
    a.acknowledged_at,
    o.shipped_at,
    p.status_posted_at,
    o.cancelled_at,
    date_diff('second', o.order_date, o.imported_at) / 60.0 AS minutes_ordered_to_imported,
    date_diff('second', o.imported_at, o.loaded_at) / 60.0 AS minutes_imported_to_loaded,
    date_diff('second', o.loaded_at, a.acknowledged_at) / 60.0 AS minutes_loaded_to_acknowledged,
    date_diff('second', a.acknowledged_at, o.shipped_at) / 60.0
        AS minutes_acknowledged_to_shipped,
    date_diff('second', o.shipped_at, p.status_posted_at) / 60.0
        AS minutes_shipped_to_posted
FROM oms.orders o
LEFT JOIN sync.acknowledgements a ON a.gdf_order_id = o.gdf_order_id
LEFT JOIN posted p ON p.order_number = o.order_number;

-- What waits, and for how long: acknowledgements not yet accepted, orders not yet shipped.
CREATE VIEW analytics.backlog AS
WITH waiting AS (
    SELECT 'acknowledgement' AS waiting_for, a.order_number, a.created_at AS since
    FROM sync.acknowledgements a
    WHERE a.status = 'PENDING'
    UNION ALL
    SELECT 'shipment', o.order_number, a.acknowledged_at
    FROM oms.orders o JOIN sync.acknowledgements a ON a.gdf_order_id = o.gdf_order_id
    WHERE o.status = 'OPEN' AND a.status = 'ACKNOWLEDGED'
    UNION ALL
    SELECT 'status update', u.order_number, u.created_at
    FROM sync.status_updates u
    WHERE u.state IN ('PENDING', 'WAITING_ACK', 'FAILED')
)
SELECT
    waiting_for,
    CASE
        WHEN age < INTERVAL 1 HOUR THEN '1: under 1 hour'
        WHEN age < INTERVAL 4 HOUR THEN '2: 1 to 4 hours'
        WHEN age < INTERVAL 24 HOUR THEN '3: 4 to 24 hours'
        WHEN age < INTERVAL 72 HOUR THEN '4: 1 to 3 days'
        ELSE '5: over 3 days'
    END AS age_bucket,
    count(*) AS orders,
    min(since) AS oldest_since
FROM (SELECT *, current_timestamp - since AS age FROM waiting)
GROUP BY ALL
ORDER BY waiting_for, age_bucket;

-- Orders and revenue per day (UTC), marketplace and currency. Money is never summed across
-- currencies.
CREATE VIEW analytics.daily_orders AS
SELECT
    CAST(timezone('UTC', order_date) AS DATE) AS order_day,
    marketplace,
    currency,
    count(*) AS orders,
    count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled_orders,
    sum(order_total) AS revenue,
    sum(order_total) FILTER (WHERE status <> 'CANCELLED') AS revenue_excluding_cancelled
FROM oms.orders
GROUP BY ALL
ORDER BY order_day, marketplace, currency;

-- Every status update sent or waiting, with its outcome.
CREATE VIEW analytics.status_updates AS
SELECT
    order_number,
    gdf_order_id,
    status,
    carrier,
    shipping_method,
    tracking_number,
    ship_date_sent,
    state AS outcome,
    attempts,
    last_error,
    gdf_status,
    source,
    source_file_name,
    source_row,
    shipment_id,
    created_at,
    posted_at,
    updated_at
FROM sync.status_updates;

-- Everything set aside: malformed orders, and rejected shipment rows and files.
CREATE VIEW analytics.quarantine AS
SELECT
    'order' AS source,
    coalesce(gdf_order_id, quarantine_id) AS item,
    NULL::INTEGER AS row_number,
    NULL AS column_name,
    reason,
    first_seen_at AS seen_at,
    seen_count,
    resolved_at
FROM sync.quarantine
UNION ALL
SELECT
    r.source,
    coalesce(f.original_name, 'shipment ' || r.shipment_id::VARCHAR, r.file_hash),
    r.row_number,
    r.column_name,
    r.reason,
    r.rejected_at,
    1,
    NULL
FROM sync.rejected_rows r
LEFT JOIN sync.shipment_files f USING (file_hash);
