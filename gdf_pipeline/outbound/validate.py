"""Validating shipment rows, a chunk at a time: which order each names, and what it would send.

Rows come from a CSV file or from oms.shipments with the text columns of SHIPMENT_COLUMNS and a
row_id (the file's row number, or the shipment_id). lookup_orders joins them to oms.orders in
one query; validate_rows then checks every rule column by column over the whole chunk and
returns the valid rows as status updates (payload and update key included) and every problem
found as a rejection with its column, value and reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

import duckdb
import pandas as pd

from gdf_pipeline.gdf import contract
from gdf_pipeline.outbound.csv_files import ID_COLUMNS
from gdf_pipeline.outbound.ship_dates import (
    ShipDateError,
    format_ship_date,
    parse_ship_date,
    resolve_ship_date,
)

CARRIER_MAX = 50
SHIPPING_METHOD_MAX = 100
TRACKING_NUMBER_MAX = 50
VALUE_SHOWN_MAX = 200

STATUS_ALIASES = {
    "": contract.SHIPPED,
    "SHIPPED": contract.SHIPPED,
    "CANCELLED": contract.CANCELLED,
    "CANCELED": contract.CANCELLED,
}

_CONTROL = r"[\x00-\x1f\x7f-\x9f]"
_FORMULA = r"[=+\-@]"
_TRACKING = r"[A-Za-z0-9](?:[A-Za-z0-9 \-]*[A-Za-z0-9])?"

REJECTED_COLUMNS = ["row_id", "column", "value", "reason"]
UPDATE_COLUMNS = [
    "row_id",
    "order_number",
    "gdf_order_id",
    "status",
    "carrier",
    "shipping_method",
    "tracking_number",
    "ship_date",
    "ship_date_sent",
    "ship_date_input",
    "payload",
    "update_key",
    "ack_status",
]


@dataclass
class Validated:
    """A chunk's outcome: valid rows as status updates, and one line per problem found."""

    updates: pd.DataFrame
    rejected: pd.DataFrame


def lookup_orders(conn: duckdb.DuckDBPyConnection, rows: pd.DataFrame) -> pd.DataFrame:
    """Adds to each row the order its id columns name (if any) and that order's details.

    by_order_number, by_gdf_order_id and by_marketplace_order_id are the order_number each
    given id finds; marketplace_matches how many orders share the marketplace_order_id;
    resolved_* , order_date and ack_status describe the one order the row names.
    """
    conn.register("rows_to_look_up", rows[["row_id", *ID_COLUMNS]])
    try:
        found = conn.execute(
            """
            WITH by_marketplace AS (
                SELECT marketplace_order_id, count(*) AS matches,
                       min(order_number) AS order_number
                FROM oms.orders
                WHERE marketplace_order_id IN (
                    SELECT marketplace_order_id FROM rows_to_look_up
                    WHERE marketplace_order_id <> ''
                )
                GROUP BY marketplace_order_id
            ),
            matched AS (
                SELECT r.row_id,
                       o1.order_number AS by_order_number,
                       o2.order_number AS by_gdf_order_id,
                       m.order_number AS by_marketplace_order_id,
                       coalesce(m.matches, 0) AS marketplace_matches
                FROM rows_to_look_up r
                LEFT JOIN oms.orders o1 ON o1.order_number = nullif(r.order_number, '')
                LEFT JOIN oms.orders o2 ON o2.gdf_order_id = nullif(r.gdf_order_id, '')
                LEFT JOIN by_marketplace m
                    ON m.marketplace_order_id = nullif(r.marketplace_order_id, '')
            )
            SELECT matched.*,
                   o.order_number AS resolved_order_number,
                   o.gdf_order_id AS resolved_gdf_order_id,
                   o.order_date,
                   a.status AS ack_status
            FROM matched
            LEFT JOIN oms.orders o ON o.order_number = coalesce(
                by_order_number, by_gdf_order_id,
                CASE WHEN marketplace_matches = 1 THEN by_marketplace_order_id END
            )
            LEFT JOIN sync.acknowledgements a ON a.gdf_order_id = o.gdf_order_id
            """
        ).df()
    finally:
        conn.unregister("rows_to_look_up")
    return rows.merge(found, on="row_id", how="left", validate="one_to_one")


def validate_rows(rows: pd.DataFrame, *, now: datetime, tz: tzinfo) -> Validated:
    """Checks every rule on the looked-up rows; see the module docstring."""
    rows = rows.reset_index(drop=True)
    problems = _Problems(rows)
    status = rows["status"].str.upper().map(STATUS_ALIASES)
    shipped = status == contract.SHIPPED

    if "extra_fields" in rows:
        extra = rows["extra_fields"] > 0
        problems.add(
            extra,
            "",
            "",
            rows["extra_fields"].map(
                lambda n: (
                    f"the row has {n} more fields than the header has columns; "
                    "values with commas must be in double quotes"
                )
            ),
        )
    resolved = _check_order_ids(rows, problems)
    problems.add(
        status.isna(),
        "status",
        rows["status"],
        "status must be SHIPPED (or blank, meaning SHIPPED) or CANCELLED",
    )
    _check_text(rows, problems, shipped)
    ship_dates = _check_ship_dates(rows, problems, shipped, resolved, now=now, tz=tz)

    valid = ~problems.mask & resolved & status.notna()
    updates = _as_updates(rows[valid], status[valid], ship_dates)
    return Validated(updates=updates, rejected=problems.frame())


def update_key(
    gdf_order_id: str,
    status: str,
    carrier: str,
    shipping_method: str,
    tracking_number: str,
    ship_date: datetime | None,
) -> str:
    """The ledger key of a status update: equal updates, equal keys (the instant, not its text)."""
    instant = ship_date.astimezone(UTC).isoformat() if ship_date is not None else ""
    parts = (gdf_order_id, status, carrier, shipping_method, tracking_number, instant)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def status_payload(
    status: str,
    ship_date_sent: str | None,
    carrier: str,
    shipping_method: str,
    tracking_number: str,
) -> dict:
    """The request body of a status update, as the client sends it."""
    if status == contract.CANCELLED:
        return {contract.STATUS_FIELD: status}
    payload = {
        contract.STATUS_FIELD: status,
        contract.SHIP_DATE_FIELD: ship_date_sent,
        contract.CARRIER_FIELD: carrier,
        contract.TRACKING_NUMBER_FIELD: tracking_number,
    }
    if shipping_method:
        payload[contract.SHIPPING_METHOD_FIELD] = shipping_method
    return payload


class _Problems:
    def __init__(self, rows: pd.DataFrame):
        self._rows = rows
        self.mask = pd.Series(False, index=self._rows.index)
        self._parts: list[pd.DataFrame] = []

    def add(self, where: pd.Series, column: str, value, reason) -> None:
        where = where.fillna(False).astype(bool)
        if not where.any():
            return
        self.mask |= where
        part = pd.DataFrame({"row_id": self._rows.loc[where, "row_id"]})
        part["column"] = column
        part["value"] = _shown(value[where] if isinstance(value, pd.Series) else value)
        part["reason"] = reason[where] if isinstance(reason, pd.Series) else reason
        self._parts.append(part)

    def frame(self) -> pd.DataFrame:
        if not self._parts:
            return pd.DataFrame({name: pd.Series(dtype=object) for name in REJECTED_COLUMNS})
        return (
            pd.concat(self._parts, ignore_index=True)
            .sort_values("row_id", kind="stable")
            .reset_index(drop=True)[REJECTED_COLUMNS]
        )


def _check_order_ids(rows: pd.DataFrame, problems: _Problems) -> pd.Series:
    given = {column: rows[column] != "" for column in ID_COLUMNS}
    problems.add(
        ~(given["order_number"] | given["gdf_order_id"] | given["marketplace_order_id"]),
        "order_number",
        "",
        "the row names no order: fill order_number, gdf_order_id or marketplace_order_id",
    )

    unknown = {
        "order_number": given["order_number"] & rows["by_order_number"].isna(),
        "gdf_order_id": given["gdf_order_id"] & rows["by_gdf_order_id"].isna(),
        "marketplace_order_id": given["marketplace_order_id"] & (rows["marketplace_matches"] == 0),
    }
    for column, where in unknown.items():
        problems.add(where, column, rows[column], f"no order in the OMS has this {column}")
    ambiguous = given["marketplace_order_id"] & (rows["marketplace_matches"] > 1)
    problems.add(
        ambiguous,
        "marketplace_order_id",
        rows["marketplace_order_id"],
        rows["marketplace_matches"].map(
            lambda n: (
                f"{n} orders in the OMS have this marketplace_order_id; fill order_number instead"
            )
        ),
    )

    found = pd.DataFrame(
        {
            "order_number": rows["by_order_number"],
            "gdf_order_id": rows["by_gdf_order_id"],
            "marketplace_order_id": rows["by_marketplace_order_id"].where(
                rows["marketplace_matches"] == 1
            ),
        }
    )
    disagree = pd.Series(False, index=rows.index)
    for first, second in (
        ("order_number", "gdf_order_id"),
        ("order_number", "marketplace_order_id"),
        ("gdf_order_id", "marketplace_order_id"),
    ):
        disagree |= found[first].notna() & found[second].notna() & (found[first] != found[second])
    if disagree.any():
        named = found[disagree].apply(lambda ids: ", ".join(sorted(set(ids.dropna()))), axis=1)
        problems.add(
            disagree,
            "order_number",
            rows["order_number"],
            named.map(lambda names: f"the order columns name different orders ({names})").reindex(
                rows.index
            ),
        )

    failed = disagree | ambiguous
    for where in unknown.values():
        failed |= where
    return rows["resolved_order_number"].notna() & ~failed


def _check_text(rows: pd.DataFrame, problems: _Problems, shipped: pd.Series) -> None:
    carrier = rows["carrier"]
    problems.add(shipped & (carrier == ""), "carrier", carrier, "a SHIPPED row needs a carrier")

    limits = {
        "carrier": CARRIER_MAX,
        "shipping_method": SHIPPING_METHOD_MAX,
        "tracking_number": TRACKING_NUMBER_MAX,
    }
    for column, limit in limits.items():
        value = rows[column]
        control = shipped & value.str.contains(_CONTROL, regex=True)
        formula = shipped & ~control & value.str.match(_FORMULA)
        too_long = shipped & ~control & ~formula & (value.str.len() > limit)
        problems.add(control, column, value, f"{column} contains a line break or control character")
        problems.add(
            formula,
            column,
            value,
            f"{column} starts with = + - or @ like a spreadsheet formula; write it as plain text",
        )
        problems.add(too_long, column, value, f"{column} is longer than {limit} characters")

        if column == "tracking_number":
            malformed = (
                shipped
                & ~control
                & ~formula
                & ~too_long
                & (value != "")
                & ~value.str.fullmatch(_TRACKING)
            )
            problems.add(
                malformed,
                column,
                value,
                "tracking_number may hold only letters, digits, and spaces or dashes between them",
            )


def _check_ship_dates(
    rows: pd.DataFrame,
    problems: _Problems,
    shipped: pd.Series,
    resolved: pd.Series,
    *,
    now: datetime,
    tz: tzinfo,
) -> dict[int, datetime]:
    # One call of the rule per row; plain lists, because pandas scalar access costs more than
    # the rule itself.
    values = rows["ship_date"].tolist()
    bought = rows["order_date"].tolist()
    known = resolved.tolist()
    resolved_dates: dict[int, datetime] = {}
    reasons: dict[int, str] = {}

    for index in shipped[shipped.fillna(False)].index.tolist():
        try:
            if known[index]:
                resolved_dates[index] = resolve_ship_date(
                    values[index], order_date=bought[index], now=now, tz=tz
                )
            else:
                parse_ship_date(values[index])
        except ShipDateError as error:
            reasons[index] = str(error)

    if reasons:
        where = pd.Series(rows.index.isin(list(reasons)), index=rows.index)
        reason = pd.Series(reasons).reindex(rows.index)
        problems.add(where, "ship_date", rows["ship_date"], reason)
    return resolved_dates


def _as_updates(rows: pd.DataFrame, status: pd.Series, ship_dates: dict) -> pd.DataFrame:
    columns = {
        name: rows[name].tolist()
        for name in (
            "row_id",
            "resolved_order_number",
            "resolved_gdf_order_id",
            "carrier",
            "shipping_method",
            "tracking_number",
            "ship_date",
            "ack_status",
        )
    }
    states = status.tolist()
    records = []
    for position, index in enumerate(rows.index.tolist()):
        state = states[position]
        gdf_order_id = columns["resolved_gdf_order_id"][position]
        if state == contract.CANCELLED:
            carrier = shipping_method = tracking_number = ship_date_input = ""
            moment, sent = None, None
        else:
            carrier = columns["carrier"][position]
            shipping_method = columns["shipping_method"][position]
            tracking_number = columns["tracking_number"][position]
            ship_date_input = columns["ship_date"][position]
            moment = ship_dates[index]
            sent = format_ship_date(moment)
        payload = status_payload(state, sent, carrier, shipping_method, tracking_number)
        ack_status = columns["ack_status"][position]
        records.append(
            (
                columns["row_id"][position],
                columns["resolved_order_number"][position],
                gdf_order_id,
                state,
                carrier,
                shipping_method,
                tracking_number,
                moment.astimezone(UTC) if moment is not None else None,
                sent,
                ship_date_input,
                json.dumps(payload),
                update_key(gdf_order_id, state, carrier, shipping_method, tracking_number, moment),
                ack_status if isinstance(ack_status, str) else None,
            )
        )
    frame = pd.DataFrame.from_records(records, columns=UPDATE_COLUMNS)
    frame["ship_date"] = pd.to_datetime(frame["ship_date"], utc=True)
    return frame


def _shown(value):
    if isinstance(value, pd.Series):
        return value.map(
            lambda text: text if len(text) <= VALUE_SHOWN_MAX else text[:VALUE_SHOWN_MAX] + "..."
        )
    return value
