"""The sequences both suites run, and the checks that are not about orders and updates.

`make test` runs each once on small worlds; `make chaos` runs them for many rounds with
every network fault profile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from chaos.hostile import HostileFile
from chaos.world import SHIP, SYNC, Run, World
from gdf_pipeline.emulator import Faults

# What the pipeline's processes print when two of them fight over a database file.
LOCK_FAILURE = re.compile(
    r"Could not set lock|Conflicting lock|database is locked|WarehouseLockTimeout"
    r"|lock on file",
    re.IGNORECASE,
)

# Network fault profiles: name -> (emulator faults, how many times the emulator's rate the
# pipeline is told it may call). A pipeline that believes the limit is three times higher
# than it is meets 429s, each with the profile's Retry-After.
PROFILES: dict[str, tuple[Faults, float]] = {
    "calm": (Faults(), 1.0),
    "5xx storm": (Faults(transient_rate=0.3, retry_after="random"), 1.0),
    "dropped connections, latency": (Faults(drop_rate=0.15, latency=0.03), 1.0),
    "429, Retry-After absent": (Faults(retry_after="absent"), 3.0),
    "429, Retry-After 0": (Faults(retry_after="zero"), 3.0),
    "429, Retry-After positive": (Faults(retry_after="positive"), 3.0),
    "429, Retry-After random": (Faults(retry_after="random"), 3.0),
    # Shorter than a round's sync, so that a token expires in the middle of a run.
    "token expiry every 10 calls": (Faults(token_expiry_calls=10), 1.0),
}

# The independent chaos run: 15 % of calls answered 5xx and 5 % dropped, a token that
# expires every 40 calls, a random Retry-After, orders imported while the client pages and
# marketplace cancellations.
INDEPENDENT = Faults(
    transient_rate=0.15,
    drop_rate=0.05,
    token_expiry_calls=40,
    retry_after="random",
    import_during_paging=3,
    upstream_cancel_rate=0.1,
)


@dataclass
class Overlap:
    """Overlapping sync and ship runs: how they ended and what they met."""

    runs: list[Run] = field(default_factory=list)
    throttled: int = 0
    lock_failures: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Run]:
        return [run for run in self.runs if run.returncode != 0]


def faults_expected(name: str) -> list[str]:
    """The kinds of fault (as `invariants.injected_faults` names them) a profile must inject."""
    faults, over = PROFILES[name]
    kinds = {
        "5xx": faults.transient_rate > 0,
        "dropped": faults.drop_rate > 0,
        "429": over > 1,
        "401": faults.token_expiry_calls > 0,
    }
    return [kind for kind, expected in kinds.items() if expected]


def use_profile(world: World, name: str, rate_burst: int, rate_per_second: float) -> None:
    """Switches the emulator's faults and the pipeline's rate settings to a profile."""
    faults, over = PROFILES[name]
    world.emulator.faults = faults
    world.rate_burst = int(rate_burst * over)
    world.rate_per_second = rate_per_second * over


def crash_round(
    world: World,
    *,
    new_orders: int,
    sync_kills: list[str],
    ship_kills: list[str],
    share: float = 0.5,
    max_runs: int = 5,
    cancel: int = 0,
) -> None:
    """New orders, a sync killed at each of sync_kills then run until clean, shipments asked
    for half the open orders, a ship killed at each of ship_kills then run until clean."""
    world.import_orders(new_orders)
    world.killed_then_clean(SYNC, sync_kills, max_runs)
    if cancel:
        world.cancel_upstream(cancel)
    world.ask_for_shipments(share)
    world.killed_then_clean(SHIP, ship_kills, max_runs)


def overlap_round(world: World, *, new_orders: int, share: float, overlap: Overlap) -> None:
    """New orders and new shipments, then sync and ship started at the same moment."""
    world.import_orders(new_orders)
    world.ask_for_shipments(share)
    before = world.emulator.stats.rate_limited
    runs = world.run_together([SYNC, SHIP])
    overlap.throttled += world.emulator.stats.rate_limited - before
    overlap.runs += runs
    for run in runs:
        found = LOCK_FAILURE.search(run.output())
        if found:
            overlap.lock_failures.append(f"{run.job} ({run.stdout.name}): {found.group(0)}")


def settle(world: World, max_runs: int = 5) -> None:
    """Runs sync, then ship, until clean, skipping a job that has nothing left to do."""
    for job in (SYNC, SHIP):
        if world.left_to_do(job):
            world.until_clean(job, max_runs)


def check_hostile_files(world: World, files: list[HostileFile], outside: Path) -> list[str]:
    """Problems with what became of each hostile file; [] when each met its fate."""
    problems = []
    logged = "".join(run.output() for run in world.runs if run.job == SHIP)
    with world.warehouse.get_connection() as conn:
        recorded = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT original_name, outcome, file_error, final_path, file_hash "
                "FROM sync.shipment_files"
            ).fetchall()
        }
        for file in files:
            entry = world.inbox / file.name
            if file.outcome == "UNREAD":
                if not (entry.exists() or entry.is_symlink()):
                    problems.append(f"{file.name} was taken from the inbox; it must stay")
                if file.name in recorded:
                    problems.append(f"{file.name} was read; it must not be")
                if file.named_in_log and f"Not reading {file.name}" not in logged:
                    problems.append(f"{file.name} is not read, and no ship run said so")
                continue
            if file.name not in recorded:
                problems.append(f"{file.name} was never processed")
                continue
            outcome, error, final_path, file_hash = recorded[file.name]
            if outcome != file.outcome:
                problems.append(f"{file.name}: {outcome}, expected {file.outcome} ({error})")
            if file.reason and file.reason.lower() not in (error or "").lower():
                problems.append(f"{file.name}: error {error!r} does not say {file.reason!r}")
            if not Path(final_path).exists() or entry.exists():
                problems.append(f"{file.name} is not where the ledger says: {final_path}")
            named = {
                row[0]
                for row in conn.execute(
                    "SELECT row_number FROM sync.rejected_rows WHERE file_hash = ?", [file_hash]
                ).fetchall()
            }
            missing = set(file.bad_rows) - named
            if missing:
                problems.append(f"{file.name}: rows {sorted(missing)} not named as rejected")
            if outcome != "PROCESSED" and not _errors_file(Path(final_path)).exists():
                problems.append(f"{file.name}: no errors file beside {final_path}")
    if (outside / "outside.csv").read_text().count("\n") != 2:
        problems.append("the file a link pointed at was changed")
    return problems


def check_odd_orders(world: World, ids: list[str]) -> list[str]:
    """Problems with the odd but valid orders: each must be in the OMS with its text exact."""
    problems = []
    with world.warehouse.get_connection() as conn:
        for gdf_id in ids:
            order = world.emulator.order(gdf_id)
            row = conn.execute(
                "SELECT order_number, customer_name, ship_address1 FROM oms.orders "
                "WHERE gdf_order_id = ?",
                [gdf_id],
            ).fetchone()
            if row is None:
                problems.append(f"odd order {gdf_id} is not in the OMS")
                continue
            expected = (
                (order.get("customer") or {}).get("name"),
                (order.get("shippingAddress") or {}).get("address1"),
            )
            if row[1:] != expected:
                problems.append(f"odd order {gdf_id}: the OMS has {row[1:]!r:.200}")
            titles = [
                title
                for (title,) in conn.execute(
                    "SELECT title FROM oms.order_lines WHERE order_number = ? ORDER BY line_number",
                    [row[0]],
                ).fetchall()
            ]
            if titles != [item["title"] for item in order["items"]]:
                problems.append(f"odd order {gdf_id}: its line titles changed on the way")
    return problems


def _errors_file(final: Path) -> Path:
    return final.with_name(final.name[: -len(".csv")] + ".errors.csv")
