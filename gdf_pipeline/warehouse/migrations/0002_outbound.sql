-- Outbound: shipments the OMS writes, the status update ledger, the shipment files received.

CREATE SEQUENCE IF NOT EXISTS oms.shipment_ids;

-- The OMS's own shipments and cancellations, the second source besides the CSV drop folder.
-- The pipeline only ever sets queued_at, update_key and rejected_reason on a row: queued_at
-- stays null until the row is taken into sync.status_updates, in the same transaction.
CREATE TABLE oms.shipments (
    shipment_id BIGINT PRIMARY KEY DEFAULT nextval('oms.shipment_ids'),
    order_number VARCHAR NOT NULL,
    status VARCHAR NOT NULL DEFAULT 'SHIPPED',   -- SHIPPED or CANCELLED
    carrier VARCHAR,
    shipping_method VARCHAR,
    tracking_number VARCHAR,
    ship_date TIMESTAMPTZ,                       -- null: the time the row is queued
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    queued_at TIMESTAMPTZ,
    update_key VARCHAR,                          -- the status update it became
    rejected_reason VARCHAR                      -- why it became none
);

-- Every status update the pipeline decided to send, one row per distinct update. update_key
-- hashes what makes an update (order, status, carrier, method, tracking number, ship date
-- sent), so the same update arriving again from any file or table row is recorded once and
-- posted once.
CREATE TABLE sync.status_updates (
    update_key VARCHAR PRIMARY KEY,
    gdf_order_id VARCHAR NOT NULL,
    order_number VARCHAR NOT NULL,
    status VARCHAR NOT NULL,                     -- SHIPPED or CANCELLED
    carrier VARCHAR,
    shipping_method VARCHAR,
    tracking_number VARCHAR,
    ship_date TIMESTAMPTZ,                       -- the instant sent; null for CANCELLED
    ship_date_sent VARCHAR,                      -- exactly as sent, with its offset
    ship_date_input VARCHAR,                     -- as the source gave it; '' when blank
    payload JSON NOT NULL,                       -- the request body sent
    source VARCHAR NOT NULL,                     -- file or table
    source_file_hash VARCHAR,
    source_file_name VARCHAR,
    source_row INTEGER,                          -- row in the file, header = row 1
    shipment_id BIGINT,                          -- row in oms.shipments
    state VARCHAR NOT NULL,                      -- PENDING, WAITING_ACK, POSTED, CONFLICT,
                                                 -- REJECTED or FAILED
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error VARCHAR,
    gdf_status VARCHAR,                          -- the order's status at GoDataFeed, last seen
    gdf_current JSON,                            -- on CONFLICT: the order's status, shipment
                                                 -- and cancelledAt at GoDataFeed
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    posted_at TIMESTAMPTZ,
    next_attempt_at TIMESTAMPTZ,                 -- FAILED and WAITING_ACK: not before
    claimed_by VARCHAR,                          -- the run posting it now
    claimed_until TIMESTAMPTZ,                   -- a crashed run's claim ends here
    queued_run_id VARCHAR,
    last_run_id VARCHAR
);

-- Conflicts side by side: what was sent and what GoDataFeed holds.
CREATE VIEW sync.status_update_conflicts AS
SELECT
    order_number,
    gdf_order_id,
    status AS sent_status,
    carrier AS sent_carrier,
    tracking_number AS sent_tracking_number,
    ship_date_sent AS sent_ship_date,
    gdf_current ->> '$.status' AS current_status,
    gdf_current ->> '$.shipment.carrier' AS current_carrier,
    gdf_current ->> '$.shipment.trackingNumber' AS current_tracking_number,
    gdf_current ->> '$.shipment.shipDate' AS current_ship_date,
    gdf_current ->> '$.cancelledAt' AS current_cancelled_at,
    last_error,
    source,
    source_file_name,
    source_row,
    shipment_id,
    updated_at
FROM sync.status_updates
WHERE state = 'CONFLICT';

-- One row per distinct shipment file content. A file whose hash is here is never read again.
CREATE TABLE sync.shipment_files (
    file_hash VARCHAR PRIMARY KEY,               -- sha256 of the bytes
    original_name VARCHAR NOT NULL,
    final_path VARCHAR NOT NULL,                 -- under processed/ or rejected/
    outcome VARCHAR NOT NULL,                    -- PROCESSED, PARTLY_REJECTED or REJECTED
    file_error VARCHAR,                          -- REJECTED: why no row was read
    size_bytes BIGINT NOT NULL,
    rows INTEGER NOT NULL,
    valid INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    queued INTEGER NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL,
    run_id VARCHAR
);

-- Rows of files and of oms.shipments that were not taken, one line per problem found.
CREATE TABLE sync.rejected_rows (
    source VARCHAR NOT NULL,                     -- file or table
    file_hash VARCHAR,
    shipment_id BIGINT,
    row_number INTEGER,                          -- row in the file; null: the whole file
    column_name VARCHAR,
    value VARCHAR,
    reason VARCHAR NOT NULL,
    rejected_at TIMESTAMPTZ NOT NULL,
    run_id VARCHAR
);
