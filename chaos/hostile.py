"""Hostile input: malformed and odd orders from GoDataFeed, malformed shipment files, links
and odd names in the drop folder, and a shipment file of any size.

Malformed orders must end in sync.quarantine with a reason while every other order loads.
Odd orders are valid however strange (any Unicode, huge text, many lines, unknown fields) and
must load exactly. Each hostile file must be rejected with a reason naming the file, or each
bad row with its row number, while the valid rows around it go out; files the inbox does not
read (links, folders, hidden and half-written files) must stay untouched and send nothing.
"""

from __future__ import annotations

import csv
import io
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from chaos.world import CSV_HEADER, Intent, World
from gdf_pipeline.emulator import REMOVE

# Text a careless loader mangles: astral-plane emoji with joiners and skin tones, right-to-left
# scripts and an override mark, combining accents, CJK, a byte order mark, line and paragraph
# separators, quotes, commas, backslashes and newlines.
UNICODE = (
    'Zoë "Z" O\'Brien, 🧑🏽‍🚀 مرحبا שלום \u202eevil\u202c e\u0301 中文 \ufeff'
    " \u2028 \u2029 \\ back\\slash \n newline 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0010fffd"
)


def _item(title: str = "Mug", quantity=1, unit_price=Decimal("10.00"), **extra) -> dict:
    return {
        "itemId": "1",
        "sku": "MUG-1",
        "marketplaceItemId": None,
        "title": title,
        "quantity": quantity,
        "unitPrice": unit_price,
        "taxAmount": Decimal("0.00"),
        "shippingAmount": Decimal("0.00"),
        "discountAmount": Decimal("0.00"),
        **extra,
    }


def _lines(items: list[dict]) -> dict:
    """Top-level changes that replace an order's lines and make its USD totals add up."""
    subtotal = sum(Decimal(i["quantity"]) * i["unitPrice"] for i in items)
    return {
        "currency": "USD",
        "items": items,
        "subtotal": subtotal,
        "shippingTotal": Decimal("0.00"),
        "taxTotal": Decimal("0.00"),
        "discountTotal": Decimal("0.00"),
        "orderTotal": subtotal,
    }


# Label -> top-level changes. Every one breaks a rule of the contract.
MALFORMED_ORDERS = {
    "money as text": {"orderTotal": "288.54"},
    "money with more decimals than USD has": {**_lines([_item()]), "orderTotal": Decimal("10.005")},
    "money of 10**40": {"orderTotal": 10**40},
    "money of 1e300": {"subtotal": 1e300},
    "money true": {"taxTotal": True},
    "no currency": {"currency": REMOVE},
    "no lines": {"items": []},
    "lines not a list": {"items": "two mugs"},
    "a fractional quantity": _lines([_item(quantity=Decimal("1.5"))]),
    "a quantity of 10**30": _lines([_item(quantity=10**30)]),
    "a line that is a string": {**_lines([_item()]), "items": ["MUG-1 x 1"]},
    "an order date without time": {"orderDate": "2026-12-03"},
    "an order date of nonsense": {"orderDate": "yesterday"},
    "no marketplace": {"marketplace": REMOVE},
    "an id that is a number": {"id": 12345},
}

# Label -> top-level changes of valid orders that must load exactly.
ODD_ORDERS = {
    "Unicode everywhere": {
        "customer": {"name": UNICODE, "email": None, "phone": None},
        "shippingAddress": {
            "name": UNICODE,
            "company": "ACME, \"Inc.\" 'Ltd'",
            "address1": UNICODE,
            "address2": None,
            "city": "Zürich",
            "state": "ZH",
            "postalCode": "8001",
            "country": "CH",
            "phone": None,
        },
        **_lines([_item(title=UNICODE)]),
    },
    "a NUL character in a name": {
        "customer": {"name": "Ann\u0000Lee", "email": None, "phone": None},
    },
    "a 1 MB title": _lines([_item(title="x" * 1_000_000)]),
    "2,000 lines": _lines([_item(title=f"line {n}") for n in range(2000)]),
    "unknown fields at every level": {
        "futureField": {"deep": [1, {"deeper": None}], "flag": True},
        **_lines([_item(warehouseBin="A-17", extra={"k": [1, 2]})]),
    },
    "the largest money that fits": _lines([_item(unit_price=Decimal("99999999999999.99"))]),
}


@dataclass(frozen=True)
class HostileFile:
    """A file dropped in the inbox and what must become of it."""

    name: str
    outcome: str  # REJECTED (whole file), PARTLY_REJECTED, PROCESSED, or UNREAD
    reason: str = ""  # words the file's error must contain (whole-file rejections)
    bad_rows: tuple[int, ...] = ()  # rows the errors file must name
    named_in_log: bool = False  # an unread entry a ship run must name in its warnings


def drop_hostile_files(world: World, outside: Path) -> list[HostileFile]:
    """Drops every hostile file into the world's inbox; registers the updates that must go.

    Uses open orders with no update asked yet: two valid rows in a file of bad rows, one in a
    file with an odd name, one in an Excel export. The orders named by bad rows, links,
    folders, hidden and half-written files must receive nothing.
    """
    orders = sorted(
        (gdf_id, number)
        for gdf_id, (number, status) in world.oms_orders().items()
        if status == "OPEN" and gdf_id not in world.intents
    )
    if len(orders) < 20:
        raise ValueError(f"hostile files need 20 open orders, {world.name} has {len(orders)}")
    pick = iter(orders)
    now = datetime.now(UTC).replace(microsecond=0)

    def valid() -> Intent:
        gdf_id, number = next(pick)
        intent = Intent(
            gdf_id,
            number,
            "SHIPPED",
            "file",
            carrier="UPS",
            shipping_method="Ground",
            tracking_number=f"1Z{world.rng.getrandbits(40):010X}",
            ship_date=now.isoformat(),
        )
        world.intents[gdf_id] = intent
        return intent

    def untouched() -> str:
        return next(pick)[1]

    files: list[HostileFile] = []
    header = ",".join(CSV_HEADER)

    def row(intent: Intent) -> list[str]:
        return [
            intent.order_number,
            "SHIPPED",
            "UPS",
            "Ground",
            intent.tracking_number,
            intent.ship_date,
        ]

    world.drop_file("utf16.csv", f"{header}\r\n{untouched()},,UPS,,,\r\n".encode("utf-16"))
    files.append(HostileFile("utf16.csv", "REJECTED", "UTF-16"))
    world.drop_file("nul-byte.csv", f"{header}\n{untouched()},,UPS\x00,,,\n")
    files.append(HostileFile("nul-byte.csv", "REJECTED", "NUL byte"))
    noise = random.Random(world.rng.random()).randbytes(4096)
    world.drop_file("random-bytes.csv", noise)
    files.append(HostileFile("random-bytes.csv", "REJECTED", "not"))
    world.drop_file("unclosed-quote.csv", f'{header}\n{untouched()},,"UPS,,,\n')
    files.append(HostileFile("unclosed-quote.csv", "REJECTED", "quote"))
    world.drop_file("empty.csv", b"")
    files.append(HostileFile("empty.csv", "REJECTED", "empty"))
    world.drop_file("no-header.csv", f"{untouched()},SHIPPED,UPS,Ground,1Z1,\n")
    files.append(HostileFile("no-header.csv", "REJECTED", "header"))
    world.drop_file("carrier-twice.csv", f"order_number,carrier,Carrier\n{untouched()},UPS,UPS\n")
    files.append(HostileFile("carrier-twice.csv", "REJECTED", "twice"))

    first, second = valid(), valid()
    bad = [
        [first.order_number, *row(first)[1:]],  # row 2: valid
        ["SO-99999999", "SHIPPED", "UPS", "", "1Z1", ""],  # 3: unknown order
        [untouched(), "SHIPPED", "UPS", "", "1Z2", "12/03/2026"],  # 4: ambiguous date
        [untouched(), "SHIPPED", "UPS", "", "1Z3", "2000-01-01T00:00:00Z"],  # 5: before order
        [untouched(), "SHIPPED", '=HYPERLINK("http://x")', "", "1Z4", ""],  # 6: formula
        [untouched(), "SHIPPED", "UPS", "", "9" * 5000, ""],  # 7: huge tracking number
        [untouched(), "SHIPPED", "UPS\nGround", "", "1Z5", ""],  # 8: newline in carrier
        [untouched(), "LOST", "UPS", "", "1Z6", ""],  # 9: no such status
        [untouched(), "SHIPPED", "UPS", "", "1Z7", "", "stray", "fields"],  # 10: extra fields
        [untouched(), "SHIPPED", "UPS", "", "1Z8", (now + timedelta(days=5)).isoformat()],  # 11
        [second.order_number, *row(second)[1:]],  # 12: valid
    ]
    world.drop_file("mixed-rows.csv", _csv([list(CSV_HEADER), *bad]))
    files.append(HostileFile("mixed-rows.csv", "PARTLY_REJECTED", bad_rows=tuple(range(3, 12))))

    odd_name = 'o\'brien ünïcødé "quoted" $(rm -rf) name.csv'
    third = valid()
    world.drop_file(odd_name, _csv([list(CSV_HEADER), row(third), ["SO-99999998", "", "UPS"]]))
    files.append(HostileFile(odd_name, "PARTLY_REJECTED", bad_rows=(3,)))

    fourth = valid()
    excel = "\ufeff" + _csv([[h.replace("_", " ").title() for h in CSV_HEADER], row(fourth)])
    world.drop_file("excel.csv", excel)
    files.append(HostileFile("excel.csv", "PROCESSED"))

    # Entries the inbox does not read; their orders must receive nothing.
    outside.mkdir(parents=True, exist_ok=True)
    target = outside / "outside.csv"
    target.write_text(_csv([list(CSV_HEADER), [untouched(), "", "UPS", "", "1Z9", ""]]))
    world.inbox.mkdir(parents=True, exist_ok=True)
    os.symlink(target, world.inbox / "linked.csv")
    os.symlink("..", world.inbox / "parent.csv")
    os.symlink(world.data_dir / "warehouse.duckdb", world.inbox / "warehouse.csv")
    (world.inbox / "folder.csv").mkdir()
    (world.inbox / "folder.csv" / "inner.csv").write_text(
        _csv([list(CSV_HEADER), [untouched(), "", "UPS", "", "1Z10", ""]])
    )
    (world.inbox / ".hidden.csv").write_text(
        _csv([list(CSV_HEADER), [untouched(), "", "UPS", "", "1Z11", ""]])
    )
    (world.inbox / "half-written.csv.part").write_text(
        _csv([list(CSV_HEADER), [untouched(), "", "UPS", "", "1Z12", ""]])
    )
    for name in ("linked.csv", "parent.csv", "warehouse.csv", "folder.csv"):
        files.append(HostileFile(name, "UNREAD", named_in_log=True))
    # Hidden and half-written files are the documented way to keep a file from being read.
    files.append(HostileFile(".hidden.csv", "UNREAD"))
    files.append(HostileFile("half-written.csv.part", "UNREAD"))
    return files


def write_big_file(world: World, size_bytes: int, orders: int = 500) -> tuple[Path, int]:
    """Drops a shipment file of about size_bytes: orders real shipments repeated over and over
    (duplicates collapse into one update each), one row in a thousand for an unknown order, and
    a notes column. Returns its path and its number of data rows."""
    asked = world.new_intents(share=1.0, file_share=1.0)
    intents = [i for i in asked if i.status == "SHIPPED"][:orders]
    for intent in asked:
        if intent not in intents:
            del world.intents[intent.gdf_order_id]  # not written: nobody asked after all
    if not intents:
        raise ValueError(f"{world.name} has no open order to ship in a big file")

    note = "picked, packed and left the dock; " * 3
    lines = []
    for intent in intents:
        lines.append(
            _csv_line(
                [
                    intent.order_number,
                    "SHIPPED",
                    intent.carrier,
                    intent.shipping_method,
                    intent.tracking_number,
                    intent.ship_date,
                    note,
                ]
            )
        )
    unknown = _csv_line(["SO-99999999", "SHIPPED", "UPS", "", "1Z1", "", note])
    header = _csv_line([*CSV_HEADER, "notes"])

    world.inbox.mkdir(parents=True, exist_ok=True)
    partial = world.inbox / "big.csv.part"
    rows = 0
    with open(partial, "w", encoding="utf-8", newline="") as handle:
        handle.write(header)
        written = len(header)
        block = []
        while written < size_bytes:
            line = unknown if rows % 1000 == 999 else lines[rows % len(lines)]
            block.append(line)
            written += len(line.encode("utf-8"))
            rows += 1
            if len(block) >= 10_000:
                handle.write("".join(block))
                block.clear()
        handle.write("".join(block))
    final = world.inbox / "big.csv"
    os.replace(partial, final)
    return final, rows


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def _csv_line(fields: list[str]) -> str:
    return _csv([fields])
