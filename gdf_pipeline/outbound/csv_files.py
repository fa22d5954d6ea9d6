"""Reading a shipment CSV file in bounded chunks, whatever spreadsheet or script wrote it.

The file's header names the columns, in any order and case, with surrounding spaces, and with
spaces or dashes for underscores. Unknown columns are ignored. The reader yields every data row
with the columns of SHIPMENT_COLUMNS as text ('' when blank or absent) and its row number as in
the file (header = row 1, as a spreadsheet shows it). A file it cannot read as CSV at all raises
ShipmentFileError with the reason; nothing of it is used then.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

ID_COLUMNS = ("order_number", "gdf_order_id", "marketplace_order_id")
SHIPMENT_COLUMNS = (
    *ID_COLUMNS,
    "status",
    "carrier",
    "shipping_method",
    "tracking_number",
    "ship_date",
)
CHUNK_ROWS = 50_000

# Fields past the header's last column are read into spare columns, so a row with a stray
# comma is rejected on its own instead of failing the whole file.
SPARE_FIELDS = 16

_SEPARATORS = re.compile(r"[\s\-]+")
_READ_OPTIONS = dict(
    header=None,
    dtype=str,
    keep_default_na=False,
    na_filter=False,
    encoding="utf-8-sig",
    # Blank lines stay in, so row numbers match the file; they are dropped after numbering.
    skip_blank_lines=False,
    index_col=False,
    engine="c",
)


class ShipmentFileError(ValueError):
    """The file as a whole cannot be read as a shipment CSV; the message says why."""


def normalize_header(name: str) -> str:
    """'  Tracking Number ' -> 'tracking_number'."""
    return _SEPARATORS.sub("_", name.strip().lower())


def read_shipment_csv(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Yields the file's non-blank data rows, chunk_rows at a time, as described above.

    Each frame has row_number, every column of SHIPMENT_COLUMNS (stripped text) and
    extra_fields (how many non-empty fields the row has past the header's columns). Raises
    ShipmentFileError, possibly after some chunks, when the file is not a readable CSV.
    """
    positions, width = _read_header(path)

    names = list(range(width + SPARE_FIELDS))
    try:
        chunks = pd.read_csv(path, names=names, chunksize=chunk_rows, **_READ_OPTIONS)
        for chunk in chunks:
            frame = _shape(chunk, positions, width)
            if len(frame):
                yield frame
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise ShipmentFileError(_parser_reason(error, width)) from None


def _read_header(path: Path) -> tuple[dict[str, int], int]:
    try:
        header = pd.read_csv(path, nrows=1, **_READ_OPTIONS)
    except pd.errors.EmptyDataError:
        raise ShipmentFileError("the file is empty; the first row must name the columns") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise ShipmentFileError(f"the header row cannot be read: {_first_line(error)}") from None

    names = [normalize_header(str(value)) for value in header.iloc[0].tolist()]
    positions: dict[str, int] = {}
    for index, name in enumerate(names):
        if name not in SHIPMENT_COLUMNS:
            continue
        if name in positions:
            raise ShipmentFileError(f"the header names the column {name} twice")
        positions[name] = index

    missing = []
    if not any(column in positions for column in ID_COLUMNS):
        missing.append("order_number (or gdf_order_id or marketplace_order_id)")
    if "carrier" not in positions:
        missing.append("carrier")
    if missing:
        found = ", ".join(name for name in names if name) or "nothing"
        raise ShipmentFileError(
            f"the header has no {' and no '.join(missing)} column; it names {_shorten(found)}"
        )
    return positions, len(names)


def _shape(chunk: pd.DataFrame, positions: dict[str, int], width: int) -> pd.DataFrame:
    # The header is record 0 of the first chunk; record i is row i + 1 of the file.
    chunk = chunk[chunk.index > 0]
    empty = chunk.apply(lambda field: field.str.strip() == "")

    frame = pd.DataFrame({"row_number": (chunk.index + 1).astype("int64")}, index=chunk.index)
    for column in SHIPMENT_COLUMNS:
        frame[column] = chunk[positions[column]].str.strip() if column in positions else ""
    frame["extra_fields"] = (~empty[list(range(width, width + SPARE_FIELDS))]).sum(axis=1)

    # A row with nothing in any field is a spreadsheet's blank line, not a shipment.
    return frame[~empty.all(axis=1)].reset_index(drop=True)


def _parser_reason(error: Exception, width: int) -> str:
    text = _first_line(error)
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if found:
        return (
            f"line {found.group(2)} has {found.group(3)} fields, the header {width}; "
            "values with commas must be in double quotes"
        )
    if "EOF inside string" in text:
        return "a double quote opens a value that never closes; check the quoting"
    return f"the file is not a readable CSV: {text}"


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return _shorten(text[0] if text else type(error).__name__, 200)


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
