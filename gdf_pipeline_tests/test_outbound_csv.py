"""Shipment files: which files are ready, reading them, validating their rows, the errors file.

Covers the reader on spreadsheet habits (BOM, CRLF, header spelling, unknown columns, blank
lines, quoted line breaks, stray fields), whole-file rejections with their reasons, the rules
every row must pass, and the errors file's formula escaping. Hypothesis feeds the reader
arbitrary bytes and arbitrary CSV shapes: it never crashes, and every row it yields ends up
either a valid status update that really is valid, or a rejection.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdf_pipeline.outbound import inbox, ledger
from gdf_pipeline.outbound.csv_files import (
    SHIPMENT_COLUMNS,
    SPARE_FIELDS,
    ShipmentFileError,
    read_shipment_csv,
)
from gdf_pipeline.outbound.ship_dates import parse_ship_date
from gdf_pipeline.outbound.validate import lookup_orders, update_key, validate_rows
from gdf_pipeline.warehouse import migrate

NOW = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
ZONE = ZoneInfo("America/New_York")
BOUGHT = "2026-12-03 14:15:27+00"


def read_all(path: Path, chunk_rows: int = 50_000) -> pd.DataFrame:
    frames = list(read_shipment_csv(path, chunk_rows=chunk_rows))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@pytest.fixture(scope="module")
def oms():
    """An in-memory warehouse with four orders; SO-3 and SO-4 share a marketplace id."""
    conn = duckdb.connect()
    migrate(conn)
    for number, gdf_id, marketplace_id in [
        ("SO-1", "g1", "111-1"),
        ("SO-2", "g2", "111-2"),
        ("SO-3", "g3", "111-3"),
        ("SO-4", "g4", "111-3"),
    ]:
        conn.execute(
            """
            INSERT INTO oms.orders (order_number, order_seq, gdf_order_id, marketplace,
                marketplace_order_id, status, order_date, currency, subtotal, shipping_total,
                tax_total, discount_total, order_total, totals_consistent, loaded_at, updated_at)
            VALUES (?, ?, ?, 'Amazon', ?, 'OPEN', ?, 'USD', 0, 0, 0, 0, 0, true, now(), now())
            """,
            [number, int(number[3:]), gdf_id, marketplace_id, BOUGHT],
        )
        conn.execute(
            "INSERT INTO sync.acknowledgements VALUES (?, ?, 'ACKNOWLEDGED', 0, NULL, now(), "
            "now(), now())",
            [gdf_id, number],
        )
    yield conn
    conn.close()


def validate(conn, frame: pd.DataFrame):
    rows = frame.rename(columns={"row_number": "row_id"})
    return validate_rows(lookup_orders(conn, rows), now=NOW, tz=ZONE)


# Reading.


def test_headers_in_any_spelling_with_bom_crlf_and_unknown_columns(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(
        "\ufeff Tracking-Number ,NOTES,Carrier,ORDER NUMBER,ship_date\r\n"
        '1Z 99,"a, b",UPS,SO-1,2026-12-03\r\n'
        "\r\n"
        ",,,,\r\n"
        '7,"two\r\nlines",FedEx , SO-2 ,\r\n'.encode()
    )

    frame = read_all(path)

    assert list(frame.columns) == ["row_number", *SHIPMENT_COLUMNS, "extra_fields"]
    assert frame["row_number"].tolist() == [2, 5]
    assert frame["order_number"].tolist() == ["SO-1", "SO-2"]
    assert frame["carrier"].tolist() == ["UPS", "FedEx"]
    assert frame["tracking_number"].tolist() == ["1Z 99", "7"]
    assert frame["status"].tolist() == ["", ""]  # no status column: blank, i.e. SHIPPED


def test_chunks_number_rows_across_chunk_boundaries(tmp_path):
    path = tmp_path / "s.csv"
    lines = ["order_number,carrier"] + [f"SO-{i},UPS" for i in range(7)]
    path.write_text("\n".join(lines) + "\n")

    frame = read_all(path, chunk_rows=3)

    assert frame["row_number"].tolist() == list(range(2, 9))
    assert frame["order_number"].tolist() == [f"SO-{i}" for i in range(7)]


def test_a_row_with_stray_fields_is_flagged_and_a_short_row_reads_blank(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("order_number,carrier,tracking_number\nSO-1,UPS,1Z,oops,,\nSO-2\n")

    frame = read_all(path)

    assert frame["extra_fields"].tolist() == [1, 0]
    assert frame.loc[1, "carrier"] == "" and frame.loc[1, "tracking_number"] == ""


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"", "the file is empty", id="empty"),
        pytest.param(b"\r\n\r\n", "the file is empty", id="blank-lines"),
        pytest.param(b"carrier,tracking\nUPS,1\n", "no order_number", id="no-order-column"),
        pytest.param(b"order_number\nSO-1\n", "no carrier", id="no-carrier"),
        pytest.param(b"Carrier,order_number,CARRIER\n", "names the column carrier twice", id="dup"),
        pytest.param(b'order_number,carrier\nSO-1,"UPS\n', "never closes", id="unterminated-quote"),
        pytest.param(
            b"order_number,carrier\n" + b"SO-1" + b",x" * (SPARE_FIELDS + 5) + b"\n",
            "line 2 has",
            id="far-too-many-fields",
        ),
    ],
)
def test_files_that_are_not_shipment_csv_are_rejected_whole(tmp_path, content, reason):
    path = tmp_path / "s.csv"
    path.write_bytes(content)

    with pytest.raises(ShipmentFileError, match=reason):
        read_all(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(b"order_number,carrier\nSO-1,UPS\xff\n", "not UTF-8", id="latin-1"),
        pytest.param("order_number".encode("utf-16"), "UTF-16", id="utf-16"),
        pytest.param(b"order_number,carrier\nSO-1\x00,UPS\n", "NUL byte", id="nul"),
        pytest.param(b"order_number,carrier\nSO-1,\xe2\x82", "not UTF-8", id="cut-mid-character"),
    ],
)
def test_the_scan_hashes_and_finds_files_that_are_not_utf8_text(tmp_path, content, problem):
    path = tmp_path / "s.csv"
    path.write_bytes(content)

    scan = inbox.scan_file(path)

    assert problem in scan.problem
    assert scan.sha256 == hashlib.sha256(content).hexdigest() and scan.size == len(content)


def test_a_utf8_file_with_bom_scans_clean(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes("\ufefforder_number,carrier\nSO-1,Poste Italiana – Crono\n".encode())

    assert inbox.scan_file(path).problem is None


def test_only_finished_visible_csv_files_directly_in_the_inbox_are_ready(tmp_path):
    for name in ["a.csv", "B.CSV", ".hidden.csv", "c.csv.part", "notes.txt"]:
        (tmp_path / name).write_text("order_number,carrier\n")
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "processed").mkdir()
    (tmp_path / "processed" / "old.csv").write_text("x")
    os.symlink(tmp_path / "a.csv", tmp_path / "link.csv")

    ready = inbox.ready_files(tmp_path)

    assert sorted(path.name for path in ready) == ["B.CSV", "a.csv"]
    assert not inbox.is_ready_name("../escape.csv")
    assert not inbox.is_ready_name("sub/inner.csv")


def test_the_documented_sample_file_reads_clean():
    sample = Path(__file__).parents[1] / "data" / "samples" / "shipments.csv"

    assert inbox.scan_file(sample).problem is None
    frame = read_all(sample)
    assert len(frame) == 6 and frame["extra_fields"].sum() == 0
    for value in frame["ship_date"]:
        parse_ship_date(value)


# Validating.


def frame_of(*rows: dict) -> pd.DataFrame:
    records = [
        {"row_number": index + 2, **dict.fromkeys(SHIPMENT_COLUMNS, ""), **row}
        for index, row in enumerate(rows)
    ]
    return pd.DataFrame.from_records(records).assign(extra_fields=0)


SHIP = {"order_number": "SO-1", "carrier": "UPS", "tracking_number": "1Z999AA1"}


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        pytest.param({"carrier": "UPS"}, "order_number", "names no order", id="no-order"),
        pytest.param({**SHIP, "order_number": "SO-9"}, "order_number", "no order", id="unknown"),
        pytest.param(
            {"gdf_order_id": "nope", "carrier": "UPS"}, "gdf_order_id", "no order", id="gdf-id"
        ),
        pytest.param(
            {"marketplace_order_id": "111-3", "carrier": "UPS"},
            "marketplace_order_id",
            "2 orders",
            id="ambiguous-marketplace-id",
        ),
        pytest.param(
            {**SHIP, "gdf_order_id": "g2"}, "order_number", "different orders", id="ids-disagree"
        ),
        pytest.param({**SHIP, "status": "RETURNED"}, "status", "SHIPPED", id="status"),
        pytest.param({**SHIP, "carrier": ""}, "carrier", "needs a carrier", id="no-carrier"),
        pytest.param({**SHIP, "carrier": "=cmd|' /C calc'!A0"}, "carrier", "formula", id="dde"),
        pytest.param(
            {**SHIP, "tracking_number": '=HYPERLINK("http://x","y")'},
            "tracking_number",
            "formula",
            id="hyperlink",
        ),
        pytest.param({**SHIP, "tracking_number": "+1Z"}, "tracking_number", "formula", id="plus"),
        pytest.param({**SHIP, "tracking_number": "-1Z"}, "tracking_number", "formula", id="minus"),
        pytest.param({**SHIP, "tracking_number": "@SUM"}, "tracking_number", "formula", id="at"),
        pytest.param({**SHIP, "tracking_number": "1Z\t99"}, "tracking_number", "control", id="tab"),
        pytest.param(
            {**SHIP, "tracking_number": "1Z_99"}, "tracking_number", "only letters", id="under"
        ),
        pytest.param(
            {**SHIP, "tracking_number": "9" * 51}, "tracking_number", "longer", id="too-long"
        ),
        pytest.param(
            {**SHIP, "shipping_method": "Ground\nExpress"},
            "shipping_method",
            "line break",
            id="method-line-break",
        ),
        pytest.param({**SHIP, "ship_date": "12/03/2026"}, "ship_date", "not a date", id="date"),
        pytest.param(
            {**SHIP, "ship_date": "2026-12-03T08:00:00-05:00"},
            "ship_date",
            "before the order's purchase time",
            id="before-purchase",
        ),
    ],
)
def test_each_rule_rejects_its_rows_with_the_column_and_reason(oms, row, column, reason):
    result = validate(oms, frame_of(row))

    assert result.updates.empty
    assert column in result.rejected["column"].tolist()
    assert any(reason in text for text in result.rejected["reason"])


def test_a_row_with_several_problems_lists_each(oms):
    result = validate(oms, frame_of({"order_number": "SO-1", "tracking_number": "=1"}))

    assert sorted(result.rejected["column"]) == ["carrier", "tracking_number"]


def test_valid_rows_become_updates_with_their_payload_and_key(oms):
    result = validate(
        oms,
        frame_of(
            {**SHIP, "status": "shipped", "shipping_method": "Ground", "ship_date": "2026-12-03"},
            {"marketplace_order_id": "111-2", "status": "Canceled", "tracking_number": "=x"},
            {"gdf_order_id": "g3", "carrier": "USPS", "ship_date": "2026-12-03T10:00:00"},
        ),
    )

    assert result.rejected.empty
    updates = result.updates.set_index("order_number")
    assert json.loads(updates.loc["SO-1", "payload"]) == {
        "status": "SHIPPED",
        "shipDate": "2026-12-03T15:00:00-05:00",
        "carrier": "UPS",
        "trackingNumber": "1Z999AA1",
        "shippingMethod": "Ground",
    }
    assert json.loads(updates.loc["SO-2", "payload"]) == {"status": "CANCELLED"}
    assert json.loads(updates.loc["SO-3", "payload"])["shipDate"] == "2026-12-03T10:00:00-05:00"
    assert "shippingMethod" not in json.loads(updates.loc["SO-3", "payload"])
    assert updates.loc["SO-3", "gdf_order_id"] == "g3"


def test_the_update_key_is_the_instant_not_how_its_offset_is_written():
    a = datetime.fromisoformat("2026-12-03T10:00:00-05:00")
    b = datetime.fromisoformat("2026-12-03T15:00:00+00:00")

    assert update_key("g1", "SHIPPED", "UPS", "", "1Z", a) == update_key(
        "g1", "SHIPPED", "UPS", "", "1Z", b
    )
    assert update_key("g1", "SHIPPED", "UPS", "", "1Z", a) != update_key(
        "g1", "SHIPPED", "UPS", "", "1Y", a
    )


# The errors file.


def test_the_errors_file_escapes_formula_cells_and_lists_file_problems_first(tmp_path):
    conn = duckdb.connect()
    migrate(conn)
    file_hash = "ab" * 32
    ledger.record_file_rejection(conn, file_hash, "-the whole file", None, NOW)
    for row_number, value in [(3, '=HYPERLINK("x")'), (2, "+1"), (4, "@A1"), (5, "plain")]:
        conn.execute(
            "INSERT INTO sync.rejected_rows (source, file_hash, row_number, column_name, value, "
            "reason, rejected_at) VALUES ('file', ?, ?, 'tracking_number', ?, 'bad', ?)",
            [file_hash, row_number, value, NOW],
        )
    target = tmp_path / "rejected" / "x.errors.csv"

    written = inbox.write_errors_file(conn, file_hash, target)

    with open(target, newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(handle))
    assert written == 5
    assert lines[0] == ["row", "column", "value", "reason"]
    assert lines[1] == ["", "", "", "'-the whole file"]
    assert [line[2] for line in lines[2:]] == ["'+1", '\'=HYPERLINK("x")', "'@A1", "plain"]
    assert inbox.errors_path(tmp_path / "20261203T200000Z-abababab-s.csv").name == (
        "20261203T200000Z-abababab-s.errors.csv"
    )


# Properties.


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("hypothesis") / "drop.csv"


def read_or_reason(path: Path) -> tuple[list[pd.DataFrame], str | None]:
    """What the pipeline does with a file: its chunks, or why the whole file is rejected."""
    scan = inbox.scan_file(path)
    if scan.problem is not None:
        return [], scan.problem
    try:
        return list(read_shipment_csv(path, chunk_rows=7)), None
    except ShipmentFileError as error:
        return [], str(error)


def assert_well_formed(frames: list[pd.DataFrame]) -> None:
    numbers = []
    for frame in frames:
        assert list(frame.columns) == ["row_number", *SHIPMENT_COLUMNS, "extra_fields"]
        for column in SHIPMENT_COLUMNS:
            assert all(isinstance(value, str) for value in frame[column])
            assert all(value == value.strip() for value in frame[column])
        numbers += frame["row_number"].tolist()
    assert numbers == sorted(set(numbers)) and all(number >= 2 for number in numbers)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.one_of(
        st.binary(max_size=400),
        st.text(max_size=300).map(str.encode),
        st.text(alphabet=',"\r\n abc\ufeff', max_size=300).map(lambda text: text.encode()),
    )
)
def test_arbitrary_bytes_never_crash_the_reader(scratch, content):
    scratch.write_bytes(content)

    frames, reason = read_or_reason(scratch)

    assert reason is None or (isinstance(reason, str) and reason)
    assert_well_formed(frames)


cell_text = st.text(
    alphabet=st.sampled_from(list("aZ09 -_,;\"'\r\n\t=+@.:/\x00\x7fé€")),
    max_size=12,
)
cells = st.one_of(
    cell_text,
    st.sampled_from(
        [
            "SO-1",
            "SO-2",
            "SO-9",
            "g3",
            "111-3",
            "111-2",
            "UPS",
            "shipped",
            "CANCELLED",
            "x",
            "2026-12-03",
            "2026-12-03T16:00:00Z",
            "2026-12-03 09:00",
            "1Z 999-AA",
            "=1+1",
            "",
        ]
    ),  # fmt: skip
)
headers = st.lists(
    st.sampled_from(
        [*SHIPMENT_COLUMNS, "Order Number", " CARRIER ", "Tracking-Number", "notes", ""]
    ),
    min_size=1,
    max_size=9,
)


@settings(max_examples=120, deadline=None)
@given(
    header=headers,
    rows=st.lists(st.lists(cells, max_size=11), max_size=12),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    bom=st.booleans(),
)
def test_any_csv_shape_yields_only_rows_that_are_validated_or_rejected(
    oms, scratch, header, rows, newline, bom
):
    text = "\n".join(",".join(_quoted(cell) for cell in line) for line in [header, *rows])
    scratch.write_bytes((("\ufeff" if bom else "") + text.replace("\n", newline)).encode())

    frames, reason = read_or_reason(scratch)

    assert_well_formed(frames)
    for frame in frames:
        result = validate(oms, frame)
        valid = set(result.updates["row_id"])
        rejected = set(result.rejected["row_id"])
        assert valid | rejected == set(frame["row_number"]) and not valid & rejected
        for update in result.updates.itertuples():
            _assert_sendable(update)


def _quoted(cell: str) -> str:
    if any(char in cell for char in ',"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _assert_sendable(update) -> None:
    payload = json.loads(update.payload)
    assert update.status in ("SHIPPED", "CANCELLED")
    assert update.order_number in ("SO-1", "SO-2", "SO-3", "SO-4")
    if update.status == "CANCELLED":
        assert payload == {"status": "CANCELLED"}
        return
    assert update.carrier and not re.search(r"[\x00-\x1f\x7f]", update.carrier)
    assert update.carrier[0] not in "=+-@"
    assert re.fullmatch(r"([A-Za-z0-9]([A-Za-z0-9 -]*[A-Za-z0-9])?)?", update.tracking_number)
    sent = datetime.fromisoformat(payload["shipDate"])
    assert "T" in payload["shipDate"] and sent.utcoffset() is not None
    assert sent >= datetime.fromisoformat(BOUGHT.replace(" ", "T").replace("+00", "+00:00"))
