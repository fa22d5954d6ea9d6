"""The quick fault-injection suite (`make chaos` runs the long one; see docs/reliability.md).

Two sellers run side by side as real `gdf-pipeline` processes against their own emulators:

- "crash": network faults throughout (5xx, dropped connections, a token that expires every
  25 calls, random Retry-After); a sync SIGKILLed at a random moment, then shipments from a
  file and from oms.shipments with the ship run killed after queueing and after its third
  status update is posted (before it is recorded), each sequence run again until clean.
- "overlap": malformed and odd orders, hostile shipment files, links and folders in the drop
  folder and a 5 MB shipment file, then sync and ship started at the same moment.

Afterwards every order must be in the OMS once and acknowledged with its number, every status
update shown at GoDataFeed once with the data asked for, every hostile input named in its error
with nothing else lost, the ship process's memory bounded, and neither the token nor the
consumer key anywhere the pipeline wrote. Set GDF_CHAOS_SEED to replay another seed.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import sys
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

# The chaos package lives at the repository root, beside this folder; pytest only puts this
# folder on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos import hostile, invariants, scenarios, secrets  # noqa: E402
from chaos.world import SHIP, SYNC, World  # noqa: E402
from gdf_pipeline.emulator import Emulator, Faults  # noqa: E402
from gdf_pipeline.outbound.jobs import QueueStatusUpdatesConfig, _files_to_read  # noqa: E402
from gdf_pipeline.warehouse import Warehouse  # noqa: E402
from gdf_pipeline.warehouse.analytics import publish_analytics_copy  # noqa: E402

# Both sellers are built once for the module, so its tests stay on one xdist worker.
pytestmark = pytest.mark.xdist_group("reliability")

SEED = int(os.environ.get("GDF_CHAOS_SEED") or 20261203)
BIG_FILE_BYTES = 5_000_000
# How much more than a ship run posting a few updates the run reading the 5 MB file may take:
# it reads 50,000 rows at a time, whatever the file's size (`make chaos` reads 200 MB).
BIG_FILE_GROWTH_ALLOWED = 160 * 2**20


@dataclass
class Sellers:
    """Both sellers after their sequences, with what the checks found."""

    crash: World
    overlap: World
    figures: dict[str, invariants.Figures]
    scans: dict[str, secrets.Scan]
    overlapping: scenarios.Overlap
    big_rows: int
    problems: list[str]


def crash_seller(world: World, _found: dict) -> None:
    world.killed_then_clean(SYNC, ["random"], max_runs=3)
    world.ask_for_shipments(share=0.7)
    world.killed_then_clean(SHIP, ["after_queue", "status_update:3"], max_runs=3)


def overlap_seller(world: World, found: dict) -> None:
    world.import_malformed(hostile.MALFORMED_ORDERS)
    found["odd_orders"] = world.import_malformed(hostile.ODD_ORDERS, malformed=False)
    world.until_clean(SYNC, max_runs=3)
    found["files"] = hostile.drop_hostile_files(world, world.root / "outside")
    _, found["big_rows"] = hostile.write_big_file(world, BIG_FILE_BYTES, orders=20)
    scenarios.overlap_round(world, new_orders=15, share=0.5, overlap=found["overlapping"])
    scenarios.settle(world, max_runs=3)


@pytest.fixture(scope="module")
def sellers(tmp_path_factory) -> Sellers:
    root = tmp_path_factory.mktemp("reliability")
    print(f"reliability seed {SEED} (GDF_CHAOS_SEED={SEED} replays it)")
    say = logging.getLogger("reliability").info
    crash_faults = Faults(
        transient_rate=0.1, drop_rate=0.05, token_expiry_calls=25, retry_after="random"
    )
    found = {"overlapping": scenarios.Overlap(), "odd_orders": [], "files": [], "big_rows": 0}
    problems: list[str] = []
    with (
        Emulator(
            orders=30, seed=SEED, rate_burst=20, rate_per_second=40, faults=crash_faults
        ).start() as crash_emulator,
        Emulator(
            orders=25, seed=SEED + 1, rate_burst=10, rate_per_second=20
        ).start() as overlap_emulator,
    ):
        crash = World(root / "crash", crash_emulator, name="crash", seed=SEED, say=say)
        crash.rate_burst, crash.rate_per_second = 20, 40.0
        overlap = World(root / "overlap", overlap_emulator, name="overlap", seed=SEED, say=say)

        def guarded(sequence, world):
            try:
                sequence(world, found)
            except Exception as error:  # every test below reports it
                problems.append(f"{world.name}: {type(error).__name__}: {error}")

        # The two sellers share nothing but the machine, so they run at the same time.
        other = threading.Thread(target=guarded, args=(crash_seller, crash))
        other.start()
        guarded(overlap_seller, overlap)
        other.join()

        # The checks read the emulators, so they run before these stop.
        figures = {world.name: invariants.check(world) for world in (crash, overlap)}
        scans = {
            world.name: secrets.scan([world.root], secrets.emulator_secrets(world.emulator))
            for world in (crash, overlap)
        }
        problems += scenarios.check_odd_orders(overlap, found["odd_orders"])
        problems += scenarios.check_hostile_files(overlap, found["files"], overlap.root / "outside")
    return Sellers(
        crash, overlap, figures, scans, found["overlapping"], found["big_rows"], problems
    )


def test_killed_runs_under_network_faults_lose_and_duplicate_nothing(sellers):
    figures = sellers.figures["crash"]

    assert [p for p in sellers.problems if p.startswith("crash:")] == []
    assert not figures.problems, f"seed {SEED}:\n  {figures.summary()}"
    assert figures.kills >= 3, [run.how for run in sellers.crash.runs]
    assert (figures.orders_lost, figures.orders_duplicated) == (0, 0)
    assert (figures.updates_lost, figures.updates_duplicated) == (0, 0)
    assert figures.updates_posted == figures.updates > 0
    assert figures.faults["5xx"] and figures.faults["dropped"] and figures.faults["401"]


def test_overlapping_sync_and_ship_meet_no_lock_failure_and_no_429(sellers):
    overlap = sellers.overlapping

    assert [run.returncode for run in overlap.runs] == [0, 0], [
        r.output()[-2000:] for r in overlap.runs
    ]
    assert overlap.lock_failures == []
    assert overlap.throttled == 0
    assert sellers.overlap.emulator.stats.rate_limited == 0


def test_hostile_input_is_named_and_nothing_else_is_lost(sellers):
    figures = sellers.figures["overlap"]

    assert sellers.problems == []
    assert not figures.problems, f"seed {SEED}:\n  {figures.summary()}"
    assert figures.orders_quarantined == len(hostile.MALFORMED_ORDERS)
    with sellers.overlap.warehouse.get_connection() as conn:
        reasons = conn.execute(
            "SELECT gdf_order_id, reason FROM sync.quarantine WHERE resolved_at IS NULL"
        ).fetchall()
    assert all(reason for _, reason in reasons)
    assert sum(gdf_id is not None for gdf_id, _ in reasons) == len(reasons) - 1  # the number id


def test_memory_stays_bounded_on_a_large_shipment_file(sellers):
    ship_runs = [run for run in sellers.overlap.runs if run.job == SHIP]
    idle = min(
        run.peak_rss_bytes for run in sellers.crash.runs if run.job == SHIP and run.returncode == 0
    )
    reading = ship_runs[0]  # the overlapping run read the big file

    assert sellers.big_rows > 20_000
    assert reading.peak_rss_bytes - idle < BIG_FILE_GROWTH_ALLOWED, (
        f"peak {reading.peak_rss_bytes >> 20} MB, idle {idle >> 20} MB"
    )


def test_nothing_the_pipeline_wrote_holds_a_secret(sellers):
    for scan in sellers.scans.values():
        assert scan.leaks == []
        assert scan.unreadable == []
        # Logs of every process, both warehouses, the Dagster instance and the state folder.
        assert scan.duckdb_files >= 2 and scan.sqlite_files >= 2
        assert scan.files > 10


def test_the_secrets_scan_finds_a_planted_secret_in_every_kind_of_file(tmp_path):
    token = "0123456789abcdef0123456789abcdef"
    (tmp_path / "log.txt").write_text(f"GET /v1/{token}/orders\n")
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        conn.execute("CREATE TABLE snapshots (body BLOB)")
        conn.execute("INSERT INTO snapshots VALUES (?)", [zlib.compress(token.encode() * 3)])
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("CREATE TABLE t AS SELECT 'x' || range AS v FROM range(100000)")
        conn.execute("INSERT INTO t VALUES (?)", [f"url /v1/{token}/orders"])

    found = secrets.scan([tmp_path], {"token": token})

    assert any("log.txt" in leak for leak in found.leaks)
    assert any("runs.db" in leak and "snapshots" in leak for leak in found.leaks)
    assert any("w.duckdb" in leak and "main.t.v" in leak for leak in found.leaks)


def test_a_run_config_cannot_name_a_file_outside_the_inbox(tmp_path, caplog):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (tmp_path / "outside.csv").write_text("order_number,carrier\n")
    os.symlink(tmp_path / "outside.csv", inbox / "linked.csv")
    config = QueueStatusUpdatesConfig(
        files=["../outside.csv", "..", "linked.csv", "/etc/passwd", "a/../../outside.csv"],
        scan_inbox=True,
    )

    assert _files_to_read(config, inbox, logging.getLogger("test")) == []
    assert "Not reading linked.csv in the inbox: it is a symbolic link" in caplog.text


def test_the_emulator_never_acts_on_a_request_a_killed_client_cut_short(emulator):
    # A process killed while sending a request leaves half a body behind; a server acts on
    # none of it, or the suite would see status updates the pipeline never finished sending.
    order_id = emulator.all_orders("NEW")[0]["id"]
    token = emulator._store.authorize(emulator.consumer_key)["token"]
    body = b'{"status": "CANCELLED"}'
    head = (
        f"PUT /v1/{token}/orders/{order_id}/status HTTP/1.1\r\nHost: emulator\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    host, port = emulator._server.server_address[:2]

    for sent in (head, head + body[:10], head + body):
        with socket.create_connection((host, port)) as sock:
            sock.sendall(sent)
            sock.shutdown(socket.SHUT_WR)
            sock.recv(4096)  # the server's answer, or its close

    assert emulator.stats.status_update_calls[order_id] == 1
    assert emulator.order(order_id)["status"] == "CANCELLED"


def test_a_copy_half_written_by_a_killed_run_is_removed_by_the_next_publish(tmp_path):
    warehouse = Warehouse(
        database=str(tmp_path / "warehouse.duckdb"),
        analytics_copy_path=str(tmp_path / "analytics" / "copy.duckdb"),
    )
    target = Path(warehouse.analytics_copy_path)
    target.parent.mkdir()
    stale = [
        target.with_name(f".copy.duckdb.{pid}.tmp{wal}") for pid, wal in ((7, ""), (8, ".wal"))
    ]
    for path in stale:
        path.write_bytes(b"customer data of a run killed while publishing")

    with warehouse.get_connection() as conn:
        publish_analytics_copy(conn, target)

    assert target.exists()
    assert not any(path.exists() for path in stale)
