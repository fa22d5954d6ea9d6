"""What must hold after every sequence of killed and clean runs, and the figures that show it.

Orders, for every order GoDataFeed holds:

- ACKNOWLEDGED or SHIPPED: in the OMS exactly once, acknowledged with its OMS order number.
- CANCELLED: either acknowledged with its OMS order number (the marketplace cancelled it
  later), or in the OMS exactly once with status CANCELLED (cancelled before its
  acknowledgement went out), or never pulled at all (cancelled while NEW before any sync saw
  it), in which case it carries no seller order number.
- NEW: only a malformed order the test imported, and then it is in sync.quarantine, unresolved,
  with its reason. Any other NEW order is lost.

And the OMS holds no order twice (by GoDataFeed id or by order number) and none GoDataFeed does
not know. An acknowledged order whose number differs from the OMS's counts as duplicated: the
marketplace and the OMS would each know it under another number.

Status updates, for every shipment or cancellation the seller asked for (each order gets at
most one):

- GoDataFeed shows it: SHIPPED with exactly that carrier and tracking number and the ship date
  the ledger sent (the one asked for, when one was written), or CANCELLED; the ledger says
  POSTED and the OMS order says the same.
- Or GoDataFeed refused it because the marketplace had cancelled the order first: the ledger
  says CONFLICT.
- Anything else is a lost update.
- GoDataFeed never received two different bodies for one order (a duplicated update), nor a
  body for an order nobody asked to update. The same body twice (a repeat after a crash between
  posting and recording, which GoDataFeed answers 200 unchanged) is allowed and counted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from chaos.world import World

PROBLEMS_SHOWN = 20


@dataclass
class Figures:
    """The counts one world ends with; `problems` lists every broken invariant."""

    name: str
    runs: int = 0
    kills: int = 0
    faults: Counter = field(default_factory=Counter)
    orders: int = 0
    orders_in_oms: int = 0
    orders_quarantined: int = 0
    orders_cancelled: int = 0
    orders_lost: int = 0
    orders_duplicated: int = 0
    updates: int = 0
    updates_posted: int = 0
    updates_refused: int = 0
    updates_lost: int = 0
    updates_duplicated: int = 0
    updates_repeated: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def faults_injected(self) -> int:
        return sum(self.faults.values())

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def summary(self) -> str:
        shown = "\n  ".join(self.problems[:PROBLEMS_SHOWN])
        more = len(self.problems) - PROBLEMS_SHOWN
        return shown + (f"\n  ... and {more} more" if more > 0 else "")


def check(world: World) -> Figures:
    """Compares GoDataFeed, the OMS and the ledger of one world; returns its figures."""
    figures = Figures(world.name, runs=len(world.runs), kills=world.kills())
    figures.faults = injected_faults(world)
    gdf = {str(order.get("id")): order for order in world.emulator.all_orders()}
    with world.warehouse.get_connection() as conn:
        oms_rows = conn.execute(
            "SELECT gdf_order_id, order_number, status FROM oms.orders"
        ).fetchall()
        quarantine = conn.execute(
            "SELECT gdf_order_id, reason, raw_json FROM sync.quarantine WHERE resolved_at IS NULL"
        ).fetchall()
        pending_acks = conn.execute(
            "SELECT count(*) FROM sync.acknowledgements WHERE status = 'PENDING'"
        ).fetchone()[0]
        ledger = conn.execute(
            "SELECT gdf_order_id, status, carrier, tracking_number, ship_date_sent, state, "
            "last_error FROM sync.status_updates"
        ).fetchall()

    _check_orders(world, figures, gdf, oms_rows, quarantine)
    if pending_acks:
        figures.problem(f"{pending_acks} acknowledgements still PENDING after a clean sync")
    _check_updates(world, figures, gdf, {row[0]: row for row in oms_rows}, ledger)
    for note in world.not_clean:
        figures.problem(note)
    for path in leftovers(world):
        figures.problem(f"left behind by a killed run: {path.relative_to(world.root)}")
    return figures


def leftovers(world: World) -> list:
    """Scratch files no run is using any more: a half-written analytics copy, a half-written
    errors file, the marker of a posting run that died. After a clean run there must be none:
    each is disk space, and the copies are customer data nobody will ever delete."""
    data = world.data_dir
    found = [
        *(data / "analytics").glob(".*.tmp*"),
        *(world.inbox / "rejected").glob("*.part"),
        *(data / "warehouse.posting").glob("*.alive"),
    ]
    return sorted(found)


def injected_faults(world: World) -> Counter:
    """The faults the emulator injected: 5xx, dropped connections, 429s, expired tokens (401s),
    orders imported while a client paged, and upstream cancellations."""
    stats = world.emulator.stats
    imported_while_paging = world.emulator.count() - world.orders_created
    return Counter(
        {
            "5xx": stats.transient,
            "dropped": stats.dropped,
            "429": stats.rate_limited,
            "401": stats.responses[401],
            "imports while paging": imported_while_paging,
            "upstream cancels": world.recorder.upstream_cancellations + world.cancelled_by_hand,
        }
    )


def _check_orders(world, figures: Figures, gdf: dict, oms_rows, quarantine) -> None:
    figures.orders = len(gdf)
    figures.orders_in_oms = len(oms_rows)
    by_id: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for gdf_id, number, status in oms_rows:
        by_id[gdf_id].append((number, status))
    numbers = Counter(number for _, number, _ in oms_rows)
    twice = [gdf_id for gdf_id, rows in by_id.items() if len(rows) > 1]
    figures.orders_duplicated += len(twice) + sum(1 for n in numbers.values() if n > 1)
    for gdf_id in twice:
        figures.problem(f"order {gdf_id} is in the OMS {len(by_id[gdf_id])} times")
    for gdf_id in set(by_id) - set(gdf):
        figures.problem(f"the OMS holds order {gdf_id}, which GoDataFeed does not know")

    quarantined_ids = {row[0] for row in quarantine if row[0]}
    quarantined_raw = [row[2] for row in quarantine]
    for gdf_id, order in gdf.items():
        status = order["status"]
        number = order.get("sellerOrderNumber")
        held = by_id.get(gdf_id, [])
        if status == "CANCELLED":
            figures.orders_cancelled += 1
        if gdf_id in world.malformed:
            named = gdf_id in quarantined_ids or any(
                str(order.get("marketplaceOrderId")) in raw for raw in quarantined_raw
            )
            if held or status != "NEW" or not named:
                figures.orders_lost += 1
                figures.problem(
                    f"malformed order {gdf_id} ({world.malformed[gdf_id]}): {status} at "
                    f"GoDataFeed, {len(held)} times in the OMS, quarantined: {named}"
                )
            else:
                figures.orders_quarantined += 1
            continue
        if status in ("ACKNOWLEDGED", "SHIPPED") or (status == "CANCELLED" and number):
            if len(held) != 1:
                figures.orders_lost += not held
                figures.problem(
                    f"order {gdf_id} is {status} at GoDataFeed as {number} but "
                    f"{len(held)} times in the OMS"
                )
            elif held[0][0] != number:
                figures.orders_duplicated += 1
                figures.problem(
                    f"order {gdf_id} is acknowledged as {number}, the OMS has it as {held[0][0]}"
                )
        elif status == "CANCELLED":
            if held and held[0][1] != "CANCELLED":
                figures.orders_lost += 1
                figures.problem(
                    f"order {gdf_id} was cancelled before its acknowledgement, but the OMS "
                    f"has it {held[0][1]}"
                )
        else:
            figures.orders_lost += 1
            figures.problem(
                f"order {gdf_id} is still {status} at GoDataFeed; the OMS has it {len(held)} times"
            )


def _check_updates(world, figures: Figures, gdf: dict, oms: dict, ledger) -> None:
    bodies: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for order_id, body, answer in world.recorder.status_updates:
        bodies[order_id].append((body, answer))
    rows_by_order: dict[str, list[tuple]] = defaultdict(list)
    for row in ledger:
        rows_by_order[row[0]].append(row)

    figures.updates = len(world.intents)
    for gdf_id, intent in world.intents.items():
        order = gdf[gdf_id]
        rows = rows_by_order.get(gdf_id, [])
        states = sorted({row[5] for row in rows})
        if len(rows) != 1:
            figures.problem(f"order {gdf_id}: {len(rows)} ledger rows for one update asked")
        if _shown_at_gdf(intent, order, rows):
            if states != ["POSTED"]:
                figures.problem(f"order {gdf_id}: GoDataFeed shows it, ledger says {states}")
            oms_status = oms.get(gdf_id, (None, None, None))[2]
            if oms_status != intent.status:
                figures.problem(
                    f"order {gdf_id}: GoDataFeed shows {intent.status}, the OMS {oms_status}"
                )
            figures.updates_posted += 1
        elif (
            order["status"] == "CANCELLED" and intent.status == "SHIPPED" and states == ["CONFLICT"]
        ):
            figures.updates_refused += 1
        else:
            figures.updates_lost += 1
            figures.problem(
                f"{intent.status} for order {gdf_id} ({intent.source}) lost: GoDataFeed has it "
                f"{order['status']}, ledger {[(r[5], r[6]) for r in rows]}"
            )

    for order_id, received in bodies.items():
        if order_id not in world.intents:
            figures.updates_duplicated += 1
            figures.problem(f"order {order_id} got a status update nobody asked for")
            continue
        distinct = {body for body, _ in received}
        if len(distinct) > 1:
            figures.updates_duplicated += 1
            figures.problem(
                f"order {order_id} got {len(distinct)} different status updates: "
                + "; ".join(f"{body} answered {answer}" for body, answer in received)
            )
        accepted = sum(1 for _, answer in received if answer == 200)
        figures.updates_repeated += max(0, accepted - 1)


def _shown_at_gdf(intent, order: dict, rows) -> bool:
    if order["status"] != intent.status:
        return False
    if intent.status == "CANCELLED":
        return True
    shipment = order.get("shipment") or {}
    if (shipment.get("carrier"), shipment.get("trackingNumber")) != (
        intent.carrier,
        intent.tracking_number,
    ):
        return False
    shipped = _instant(shipment.get("shipDate"))
    sent = [_instant(row[4]) for row in rows if row[5] == "POSTED"]
    if intent.ship_date and shipped != _instant(intent.ship_date):
        return False
    return shipped in sent


def _instant(text) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
