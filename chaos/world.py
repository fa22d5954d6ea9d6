"""One seller under test: an emulator, a data folder, the jobs as processes, and the shipments
the seller asked for.

Every run of `sync` or `ship` is a fresh `python -m gdf_pipeline.cli` process with its own
stdout and stderr files under `logs/` (the secrets scan reads them). A run is killed either by
its own crash point (GDF_CRASH_AT) or from here, with SIGKILL after a random fraction of the
job's typical duration; either way nothing in the process gets to clean up.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gdf_pipeline.emulator import Emulator
from gdf_pipeline.emulator.store import ApiError
from gdf_pipeline.warehouse import Warehouse

SYNC = "sync"
SHIP = "ship"
CRASH_POINTS = {
    SYNC: ("after_pull", "after_load", "acknowledgement"),
    SHIP: ("after_shipment_file_commit", "after_queue", "status_update"),
}
# How long a job takes before this world has timed one of its own runs. Dagster's start-up and
# run bookkeeping dominate: an idle sync takes about as long as one with a few hundred orders.
FIRST_GUESS_SECONDS = {SYNC: 12.0, SHIP: 10.0}
# A random kill strikes between these fractions of the typical duration. The first fifth is
# the interpreter importing Dagster, which touches no data.
KILL_WINDOW = (0.2, 1.0)
RUN_TIMEOUT_SECONDS = 900
POLL_SECONDS = 0.02
CARRIERS = ("UPS", "FedEx", "USPS", "DHL eCommerce", "OnTrac")
METHODS = ("Ground", "2nd Day Air", "Priority Mail", "Home Delivery", "")
CSV_HEADER = (
    "order_number",
    "status",
    "carrier",
    "shipping_method",
    "tracking_number",
    "ship_date",
)


@dataclass
class Run:
    """One process of a job: how it ended, how long it took, its peak memory, its output."""

    job: str
    returncode: int
    seconds: float
    peak_rss_bytes: int
    stdout: Path
    stderr: Path
    crash_at: str | None = None
    kill_after: float | None = None
    kill_missed: bool = False

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    @property
    def how(self) -> str:
        if self.crash_at:
            return f"crash point {self.crash_at}"
        if self.kill_after is not None:
            return f"SIGKILL after {self.kill_after:.1f} s"
        return "finished before its kill" if self.kill_missed else "clean"

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


@dataclass(frozen=True)
class Intent:
    """A status update the seller asked for, through a shipment file or an oms.shipments row."""

    gdf_order_id: str
    order_number: str
    status: str
    source: str
    carrier: str = ""
    shipping_method: str = ""
    tracking_number: str = ""
    ship_date: str = ""  # as written; '' when blank


@dataclass
class Recorder:
    """What reached the emulator's order store: each status update body, upstream cancels."""

    status_updates: list[tuple[str, str, int]] = field(default_factory=list)
    upstream_cancellations: int = 0
    journal: Path | None = None  # every status update, one line each, for a post-mortem


class _Started:
    def __init__(self, job, process, stdout, stderr, crash_at, kill_after):
        self.job = job
        self.process = process
        self.stdout = stdout
        self.stderr = stderr
        self.crash_at = crash_at
        self.kill_after = kill_after
        self.started = time.monotonic()


class World:
    """A seller's pipeline against its own emulator, in its own folder."""

    def __init__(
        self,
        root: Path,
        emulator: Emulator,
        *,
        name: str = "world",
        seed: int = 0,
        rate_burst: int = 10,
        rate_per_second: float = 20.0,
        timezone: str = "America/Chicago",
        say=None,
    ):
        self.root = Path(root)
        self.name = name
        self.emulator = emulator
        self.rng = random.Random(f"{name}:{seed}")
        self.data_dir = self.root / "data"
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.rate_burst = rate_burst
        self.rate_per_second = rate_per_second
        self.timezone = timezone
        self.say = say or (lambda text: None)
        self.runs: list[Run] = []
        self.intents: dict[str, Intent] = {}
        self.malformed: dict[str, str] = {}  # gdf_order_id -> what is wrong with it
        self.not_clean: list[str] = []
        self.recorder = record_store_calls(emulator)
        self.recorder.journal = self.root / "status-updates-received.log"
        self.warehouse = Warehouse(
            database=str(self.data_dir / "warehouse.duckdb"),
            analytics_copy_path=str(self.data_dir / "analytics" / "analytics_copy.duckdb"),
        )
        self.orders_created = emulator.count()
        self.cancelled_by_hand = 0
        self._durations: dict[str, list[float]] = {SYNC: [], SHIP: []}
        self._counter = 0
        self._lock = threading.Lock()

    # Processes.

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "GDF_API_URL": self.emulator.url,
            "GDF_CONSUMER_KEY": self.emulator.consumer_key,
            "GDF_DATA_DIR": str(self.data_dir),
            "DAGSTER_HOME": str(self.data_dir / "dagster_home"),
            "GDF_RATE_LIMIT_BURST": str(self.rate_burst),
            "GDF_RATE_LIMIT_PER_SECOND": str(self.rate_per_second),
            "GDF_TIMEZONE": self.timezone,
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("GDF_CRASH_AT", None)
        env.update(extra)
        return env

    def start(self, job: str, *, crash_at: str | None = None, kill_after=None) -> _Started:
        with self._lock:
            self._counter += 1
            stem = self.logs / f"{self._counter:03d}-{job}"
        stdout, stderr = stem.with_suffix(".out"), stem.with_suffix(".err")
        extra = {"GDF_CRASH_AT": crash_at} if crash_at else {}
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            process = subprocess.Popen(
                [sys.executable, *job_command(job)],
                env=self.env(**extra),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        return _Started(job, process, stdout, stderr, crash_at, kill_after)

    def finish(self, started: _Started) -> Run:
        """Waits for the process (killing it when its time has come); returns its Run."""
        pid = started.process.pid
        kill_at = None if started.kill_after is None else started.started + started.kill_after
        deadline = started.started + RUN_TIMEOUT_SECONDS
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            now = time.monotonic()
            if kill_at is not None and now >= kill_at:
                os.kill(pid, signal.SIGKILL)
                kill_at = None
            if now > deadline:
                os.kill(pid, signal.SIGKILL)
                raise RuntimeError(f"{started.job} ran over {RUN_TIMEOUT_SECONDS} s; see {pid}")
            time.sleep(POLL_SECONDS)
        seconds = time.monotonic() - started.started
        code = os.waitstatus_to_exitcode(status)
        started.process.returncode = code  # reaped here, so Popen must not wait again
        run = Run(
            job=started.job,
            returncode=code,
            seconds=seconds,
            # Linux reports ru_maxrss in KiB.
            peak_rss_bytes=usage.ru_maxrss * 1024,
            stdout=started.stdout,
            stderr=started.stderr,
            crash_at=started.crash_at,
            kill_after=started.kill_after,
        )
        # A kill that came after the process had already finished is no kill.
        if run.kill_after is not None and not run.killed:
            run.kill_after = None
            run.kill_missed = True
        if not run.killed and run.returncode == 0:
            self._durations[run.job].append(seconds)
        with self._lock:
            self.runs.append(run)
        self.say(f"{self.name}: {run.job} {run.how}: exit {run.returncode} in {seconds:.1f} s")
        return run

    def run(self, job: str, *, crash_at: str | None = None, kill_after=None) -> Run:
        return self.finish(self.start(job, crash_at=crash_at, kill_after=kill_after))

    def run_together(self, jobs: list[str]) -> list[Run]:
        """Starts every job at once (overlapping runs); returns their Runs in the same order."""
        started = [self.start(job) for job in jobs]
        return [self.finish(one) for one in started]

    def typical_seconds(self, job: str) -> float:
        """How long the job's last few finished runs took (their median)."""
        times = self._durations[job][-3:]
        return statistics.median(times) if times else FIRST_GUESS_SECONDS[job]

    def random_kill(self, job: str, attempts: int = 3) -> Run:
        """Starts the job and SIGKILLs it after a random fraction of its typical duration.

        A run that finishes before its kill counts as a clean run, and the job is started
        again (its duration now known), up to `attempts` times.
        """
        for _ in range(attempts):
            delay = self.rng.uniform(*KILL_WINDOW) * self.typical_seconds(job)
            run = self.run(job, kill_after=delay)
            if run.killed:
                break
        return run

    def killed_then_clean(self, job: str, kills: list[str], max_runs: int = 5) -> list[Run]:
        """Runs the job once per kill ("random" or a crash point), then until it is clean."""
        runs = []
        for kill in kills:
            if kill == "random":
                runs.append(self.random_kill(job))
            else:
                runs.append(self.run(job, crash_at=kill))
        return runs + self.until_clean(job, max_runs)

    def until_clean(self, job: str, max_runs: int = 5) -> list[Run]:
        """Runs the job until a run ends with exit 0 and nothing left to do, at most max_runs."""
        runs = []
        for _ in range(max_runs):
            run = self.run(job)
            runs.append(run)
            left = self.left_to_do(job) if run.returncode == 0 else f"exit {run.returncode}"
            if not left:
                return runs
            self.say(f"{self.name}: {job} not clean yet: {left}")
        self.not_clean.append(f"{job} not clean after {max_runs} runs: {left}")
        return runs

    def left_to_do(self, job: str) -> str:
        """What a job still has to do, as text; '' when it is clean."""
        with self.warehouse.get_connection() as conn:
            if job == SYNC:
                pending = conn.execute(
                    "SELECT count(*) FROM sync.acknowledgements WHERE status = 'PENDING'"
                ).fetchone()[0]
                unread = {str(o.get("id")) for o in self.emulator.all_orders("NEW")} - set(
                    self.malformed
                )
                parts = [f"{pending} acknowledgements pending"] if pending else []
                if unread:
                    parts.append(f"{len(unread)} NEW orders at GoDataFeed not loaded")
                return ", ".join(parts)
            unqueued = conn.execute(
                "SELECT count(*) FROM oms.shipments WHERE queued_at IS NULL"
            ).fetchone()[0]
            states = dict(
                conn.execute(
                    "SELECT state, count(*) FROM sync.status_updates "
                    "WHERE state IN ('PENDING', 'WAITING_ACK', 'FAILED') GROUP BY state"
                ).fetchall()
            )
            claimed = conn.execute(
                "SELECT count(*) FROM sync.status_updates WHERE claimed_by IS NOT NULL"
            ).fetchone()[0]
        parts = [f"{count} updates {state}" for state, count in sorted(states.items())]
        if claimed:
            parts.append(f"{claimed} of them claimed by a run")
        if unqueued:
            parts.append(f"{unqueued} oms.shipments rows not queued")
        ready = self.ready_files()
        if ready:
            parts.append(f"{len(ready)} files still in the inbox")
        return ", ".join(parts)

    # GoDataFeed's side: new orders, malformed ones, cancellations by the marketplace.

    def import_orders(self, count: int) -> list[str]:
        self.orders_created += count
        return self.emulator.import_orders(count)

    def import_malformed(self, cases: dict[str, dict], *, malformed: bool = True) -> list[str]:
        """Imports one order per case (label -> top-level changes); malformed ones must end in
        quarantine, the others (odd but valid) in the OMS."""
        ids = self.emulator.import_malformed(list(cases.values()))
        self.orders_created += len(ids)
        # An order whose id was spoiled shows that id to clients, and to the checks.
        ids = [
            str(change["id"]) if "id" in change and isinstance(change["id"], str | int) else i
            for i, change in zip(ids, cases.values(), strict=True)
        ]
        if malformed:
            self.malformed.update(zip(ids, cases, strict=True))
        return ids

    def cancel_upstream(self, count: int) -> list[str]:
        """The marketplace cancels acknowledged orders the seller has not shipped yet, so that
        a shipment asked for one of them next meets GoDataFeed's refusal."""
        candidates = [
            o["id"] for o in self.emulator.all_orders("ACKNOWLEDGED") if o["id"] not in self.intents
        ]
        chosen = self.rng.sample(candidates, min(count, len(candidates)))
        for gdf_id in chosen:
            self.emulator.cancel_upstream(gdf_id)
        self.cancelled_by_hand += len(chosen)
        return chosen

    # The seller's side: orders in the OMS, shipments asked for.

    @property
    def inbox(self) -> Path:
        return self.data_dir / "inbox" / "shipments"

    def ready_files(self) -> list[Path]:
        if not self.inbox.is_dir():
            return []
        return [
            p
            for p in self.inbox.iterdir()
            if p.name.endswith(".csv")
            and not p.name.startswith(".")
            and p.is_file()
            and not p.is_symlink()
        ]

    def oms_orders(self) -> dict[str, tuple[str, str]]:
        """gdf_order_id -> (order_number, status) of every order the OMS holds."""
        with self.warehouse.get_connection() as conn:
            rows = conn.execute(
                "SELECT gdf_order_id, order_number, status FROM oms.orders"
            ).fetchall()
        return {gdf_id: (number, status) for gdf_id, number, status in rows}

    def new_intents(self, share: float = 0.5, file_share: float = 0.5) -> list[Intent]:
        """Picks a share of the open orders that have no update asked yet, and asks for one.

        About one in eight is a cancellation by the seller, the rest shipments; file_share of
        them are for a shipment file, the rest for oms.shipments. Returns the new intents,
        already counted as asked; the caller writes them.
        """
        now = datetime.now(UTC)
        open_orders = sorted(
            (gdf_id, number)
            for gdf_id, (number, status) in self.oms_orders().items()
            if status == "OPEN" and gdf_id not in self.intents
        )
        chosen = [order for order in open_orders if self.rng.random() < share]
        intents = [self._intent(gdf_id, number, now, file_share) for gdf_id, number in chosen]
        for intent in intents:
            self.intents[intent.gdf_order_id] = intent
        return intents

    def ask_for_shipments(self, share: float = 0.5, file_share: float = 0.5) -> list[Intent]:
        """New intents (see new_intents), written as one shipment file and oms.shipments rows."""
        intents = self.new_intents(share, file_share)
        file_rows = [i for i in intents if i.source == "file"]
        table_rows = [i for i in intents if i.source == "table"]
        if file_rows:
            self.drop_file(f"shipments-{len(self.intents):05d}.csv", csv_text(file_rows))
        if table_rows:
            self.insert_shipments(table_rows)
        return intents

    def insert_shipments(self, intents: list[Intent]) -> None:
        """Writes intents as oms.shipments rows, as the OMS would, under the writer lock."""
        with self.warehouse.get_connection() as conn:
            conn.executemany(
                "INSERT INTO oms.shipments (order_number, status, carrier, shipping_method, "
                "tracking_number, ship_date) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        i.order_number,
                        i.status,
                        i.carrier or None,
                        i.shipping_method or None,
                        i.tracking_number,
                        datetime.fromisoformat(i.ship_date) if i.ship_date else None,
                    )
                    for i in intents
                ],
            )

    def drop_file(self, name: str, content: str | bytes) -> Path:
        """Writes a file into the inbox under a .part name and renames it, as the docs ask."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        partial = self.inbox / f"{name}.part"
        data = content.encode("utf-8") if isinstance(content, str) else content
        partial.write_bytes(data)
        final = self.inbox / name
        os.replace(partial, final)
        return final

    def _intent(self, gdf_id: str, number: str, now: datetime, file_share: float) -> Intent:
        source = "file" if self.rng.random() < file_share else "table"
        if self.rng.random() < 0.125:
            return Intent(gdf_id, number, "CANCELLED", source)
        order_date = datetime.fromisoformat(self.emulator.order(gdf_id)["orderDate"])
        shipped = min(now, order_date + timedelta(minutes=self.rng.randint(1, 2880)))
        ship_date = shipped.replace(microsecond=0).isoformat()
        if source == "file" and self.rng.random() < 0.3:
            ship_date = ""  # blank: the time of the run
        return Intent(
            gdf_id,
            number,
            "SHIPPED",
            source,
            carrier=self.rng.choice(CARRIERS),
            shipping_method=self.rng.choice(METHODS),
            tracking_number=f"1Z{self.rng.getrandbits(48):012X}",
            ship_date=ship_date,
        )

    # Figures.

    def kills(self) -> int:
        return sum(run.killed for run in self.runs)


def job_command(job: str) -> list[str]:
    """The interpreter arguments that run one job as the command line does."""
    if job == SYNC:
        return ["-m", "gdf_pipeline.cli", "sync"]
    if _cli_has_ship():
        return ["-m", "gdf_pipeline.cli", "ship"]
    return ["-c", _SHIP_FALLBACK]


def _cli_has_ship() -> bool:
    from gdf_pipeline import cli

    return '"ship"' in Path(cli.__file__).read_text(encoding="utf-8")


# The same logging set-up as the command line's, around the function `gdf-pipeline ship` calls.
_SHIP_FALLBACK = """
import logging, sys
logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
logging.getLogger("gdf_pipeline").setLevel(logging.INFO)
from gdf_pipeline.outbound import run_ship
counts = run_ship()
print({k: v for k, v in counts.items() if k != "run_id"})
sys.exit(0 if counts["success"] else 1)
"""


def record_store_calls(emulator: Emulator) -> Recorder:
    """Wraps the emulator's store to record each status update body and upstream cancellation.

    Faults strike before a call reaches the store, so what is recorded is exactly what took
    effect or was refused by GoDataFeed's rules.
    """
    store = emulator._store
    recorder = Recorder()
    update_status = store.update_status
    cancel_random = store._cancel_random_open_order

    def recording_update_status(order_id, body):
        text = json.dumps(body, sort_keys=True, default=str)
        answer = 500  # unless the store answers otherwise
        try:
            result = update_status(order_id, body)
            answer = 200
            return result
        except ApiError as error:
            answer = error.status
            raise
        finally:
            recorder.status_updates.append((order_id, text, answer))
            if recorder.journal is not None:
                with open(recorder.journal, "a", encoding="utf-8") as journal:
                    journal.write(f"{time.time():.3f} {order_id} {answer} {text}\n")

    def recording_cancel():
        # Called with the store's lock held: its index is read directly.
        before = len(store._index["CANCELLED"])
        cancel_random()
        recorder.upstream_cancellations += len(store._index["CANCELLED"]) - before

    store.update_status = recording_update_status
    store._cancel_random_open_order = recording_cancel
    return recorder


def csv_text(intents: list[Intent]) -> str:
    """A shipment file with one row per intent, CRLF line ends as a spreadsheet writes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for i in intents:
        writer.writerow(
            [i.order_number, i.status, i.carrier, i.shipping_method, i.tracking_number, i.ship_date]
        )
    return out.getvalue()
