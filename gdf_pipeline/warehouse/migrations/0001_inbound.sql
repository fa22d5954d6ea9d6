-- Inbound: raw pulls, the OMS order tables, acknowledgements, quarantine and cursors.

CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS oms;
CREATE SCHEMA IF NOT EXISTS sync;

-- One row per listing the pipeline read from GoDataFeed. A pull is transformed exactly once:
-- transformed_at stays null until the load that consumed it commits.
CREATE TABLE raw.pulls (
    pull_id VARCHAR PRIMARY KEY,
    run_id VARCHAR,
    listing VARCHAR NOT NULL,          -- NEW, CANCELLED (upstream cancels) or REPLAY (operator)
    modified_since TIMESTAMPTZ,
    pulled_at TIMESTAMPTZ NOT NULL,
    order_count INTEGER NOT NULL,
    api_calls INTEGER NOT NULL,
    transformed_at TIMESTAMPTZ
);

-- Every pulled order's JSON as received (money kept as exact JSON numbers).
CREATE TABLE raw.orders (
    pull_id VARCHAR NOT NULL,
    gdf_order_id VARCHAR,              -- null when the order carries no usable id
    gdf_status VARCHAR,
    raw_json JSON NOT NULL,
    pulled_at TIMESTAMPTZ NOT NULL,
    run_id VARCHAR
);

CREATE TABLE oms.orders (
    order_number VARCHAR PRIMARY KEY,
    order_seq BIGINT NOT NULL UNIQUE,
    gdf_order_id VARCHAR NOT NULL UNIQUE,
    store_id VARCHAR,
    marketplace VARCHAR NOT NULL,
    marketplace_order_id VARCHAR,
    status VARCHAR NOT NULL,           -- OPEN, SHIPPED or CANCELLED
    order_date TIMESTAMPTZ NOT NULL,
    imported_at TIMESTAMPTZ,
    gdf_modified_at TIMESTAMPTZ,
    currency VARCHAR NOT NULL,
    subtotal DECIMAL(18, 3) NOT NULL,
    shipping_total DECIMAL(18, 3) NOT NULL,
    tax_total DECIMAL(18, 3) NOT NULL,
    discount_total DECIMAL(18, 3) NOT NULL,
    order_total DECIMAL(18, 3) NOT NULL,
    totals_consistent BOOLEAN NOT NULL,
    shipping_method VARCHAR,
    payment_method VARCHAR,
    customer_name VARCHAR,
    customer_email VARCHAR,
    customer_phone VARCHAR,
    ship_name VARCHAR,
    ship_company VARCHAR,
    ship_address1 VARCHAR,
    ship_address2 VARCHAR,
    ship_city VARCHAR,
    ship_state VARCHAR,
    ship_postal_code VARCHAR,
    ship_country VARCHAR,
    ship_phone VARCHAR,
    bill_name VARCHAR,
    bill_company VARCHAR,
    bill_address1 VARCHAR,
    bill_address2 VARCHAR,
    bill_city VARCHAR,
    bill_state VARCHAR,
    bill_postal_code VARCHAR,
    bill_country VARCHAR,
    bill_phone VARCHAR,
    carrier VARCHAR,
    tracking_number VARCHAR,
    shipped_at TIMESTAMPTZ,
    cancelled_at TIMESTAMPTZ,
    loaded_at TIMESTAMPTZ NOT NULL,
    load_run_id VARCHAR,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE oms.order_lines (
    order_number VARCHAR NOT NULL,
    line_number INTEGER NOT NULL,
    gdf_item_id VARCHAR,
    sku VARCHAR,
    marketplace_item_id VARCHAR,
    title VARCHAR,
    quantity INTEGER NOT NULL,
    unit_price DECIMAL(18, 3) NOT NULL,
    line_subtotal DECIMAL(18, 3) NOT NULL,
    tax_amount DECIMAL(18, 3) NOT NULL,
    shipping_amount DECIMAL(18, 3) NOT NULL,
    discount_amount DECIMAL(18, 3) NOT NULL,
    PRIMARY KEY (order_number, line_number)
);

-- Written in the same transaction as the order's OMS rows, so nothing is acknowledged that
-- the OMS does not hold, and every held order is acknowledged with the number it holds.
CREATE TABLE sync.acknowledgements (
    gdf_order_id VARCHAR PRIMARY KEY,
    order_number VARCHAR NOT NULL UNIQUE,
    status VARCHAR NOT NULL,           -- PENDING, ACKNOWLEDGED, CONFLICT, REJECTED, CANCELLED
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    acknowledged_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Orders (and, later, CSV rows) that could not be used, with the reason and the input.
-- quarantine_id is a hash of the input, so the same bad order pulled again is counted, not copied.
CREATE TABLE sync.quarantine (
    quarantine_id VARCHAR PRIMARY KEY,
    source VARCHAR NOT NULL,           -- order
    gdf_order_id VARCHAR,
    reason VARCHAR NOT NULL,
    raw_json VARCHAR NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    seen_count INTEGER NOT NULL,
    run_id VARCHAR,
    resolved_at TIMESTAMPTZ
);

CREATE TABLE sync.cursors (
    name VARCHAR PRIMARY KEY,
    value VARCHAR,
    updated_at TIMESTAMPTZ NOT NULL
);

-- One row per finished step of a run, with its counts, for `gdf-pipeline status`.
CREATE TABLE sync.step_counts (
    run_id VARCHAR NOT NULL,
    job_name VARCHAR NOT NULL,
    step VARCHAR NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    api_calls INTEGER NOT NULL,
    api_429s INTEGER NOT NULL,
    counts JSON NOT NULL,
    PRIMARY KEY (run_id, step)
);
