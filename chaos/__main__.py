"""`make chaos`: the long fault-injection run, ending with a table of figures.

Four sellers, two at a time (the machine has two cores to share):

1. crash matrix: every crash point of sync and ship in turn plus a random kill of each job in
   every round, under each network fault profile in turn (calm, 5xx storm, dropped
   connections with latency, 429 with each Retry-After mode, token expiry); a profile whose
   faults never struck gets up to two more rounds, and fails the run if they still do not;
2. independent chaos: 15 % of calls answered 5xx and 5 % dropped, a token expiring every 40
   calls, random Retry-After, orders imported while the client pages, marketplace
   cancellations, and only random kills;
3. overlapping runs: sync and ship started at the same moment, round after round;
4. hostile input: malformed and odd orders, hostile shipment files and drop-folder entries,
   and a 200 MB shipment file whose ship process's peak memory is measured.

Then everything the pipeline wrote is scanned for the token and the consumer key. Exit status
0 when every invariant held and at least --min-kills runs were killed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from chaos import hostile, invariants, scenarios, secrets
from chaos.invariants import Figures
from chaos.world import SHIP, SYNC, World
from gdf_pipeline.emulator import Emulator

FIGURES_START = "<!-- chaos figures: start -->"
FIGURES_END = "<!-- chaos figures: end -->"
# Extra crash matrix rounds a profile gets when its kind of fault has not struck yet.
EXTRA_ROUNDS_MAX = 2


@dataclass
class Report:
    seed: int
    figures: list[Figures] = field(default_factory=list)
    overlap: scenarios.Overlap = field(default_factory=scenarios.Overlap)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    scan: secrets.Scan | None = None
    secrets_scanned: int = 0
    started: float = field(default_factory=time.monotonic)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, help="replay a run (default: a random seed)")
    parser.add_argument("--rounds", type=int, default=10, help="crash matrix rounds (10)")
    parser.add_argument("--chaos-rounds", type=int, default=5, help="independent rounds (5)")
    parser.add_argument("--overlap-rounds", type=int, default=5, help="overlap rounds (5)")
    parser.add_argument("--big-file-mb", type=int, default=200, help="big shipment file (200)")
    parser.add_argument("--min-kills", type=int, default=50, help="fail below this (50)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--record", type=Path, help="write the table into this Markdown file")
    args = parser.parse_args(argv)

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    print(f"chaos seed {seed} (python -m chaos --seed {seed} replays it)", flush=True)
    report = Report(seed)
    work = Path(tempfile.mkdtemp(prefix="gdf-chaos-"))
    emulators: list[Emulator] = []
    worlds: list[World] = []

    def seller(name: str, **emulator_args) -> World:
        emulator = Emulator(seed=seed + len(emulators), **emulator_args).start()
        emulators.append(emulator)
        # The pipeline is told the emulator's true rate limit (the 429 profiles lie to it).
        world = World(
            work / name,
            emulator,
            name=name,
            seed=seed,
            say=_say,
            rate_burst=emulator_args["rate_burst"],
            rate_per_second=emulator_args["rate_per_second"],
        )
        worlds.append(world)
        return world

    try:
        _two_at_a_time(
            report,
            (
                crash_matrix,
                seller("crash-matrix", orders=60, rate_burst=10, rate_per_second=10),
                args.rounds,
            ),
            (
                independent,
                seller("independent", orders=320, rate_burst=50, rate_per_second=100),
                args.chaos_rounds,
            ),
        )
        _two_at_a_time(
            report,
            (
                overlapping,
                seller("overlap", orders=40, rate_burst=10, rate_per_second=20),
                args.overlap_rounds,
            ),
            (
                hostile_input,
                seller("hostile", orders=600, rate_burst=100, rate_per_second=200),
                args.big_file_mb,
            ),
        )
        for world in worlds:
            figures = invariants.check(world)
            report.figures.append(figures)
            report.problems += [f"{world.name}: {p}" for p in figures.problems]
        known = {}
        for emulator in emulators:
            known.update(secrets.emulator_secrets(emulator))
        report.secrets_scanned = len(known)
        report.scan = secrets.scan([work], known)
        report.problems += report.scan.leaks
        report.problems += [f"not searched through SQL: {u}" for u in report.scan.unreadable]
    except Exception as error:  # the table is still printed, with this as a problem
        report.problems.append(f"the harness failed: {type(error).__name__}: {error}")
    finally:
        for emulator in emulators:
            emulator.stop()

    table = format_report(report)
    print("\n" + table, flush=True)
    if args.record:
        record(args.record, table)
    kills = sum(f.kills for f in report.figures)
    ok = not report.problems and kills >= args.min_kills
    if kills < args.min_kills:
        print(f"only {kills} runs were killed; at least {args.min_kills} are required")
    if args.keep or not ok:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def crash_matrix(world: World, report: Report, rounds: int) -> None:
    """Each round: one network profile, a sync crash point and a ship crash point in turn,
    plus a random kill of each job, then each run until clean. A profile whose faults never
    struck gets extra rounds; one that still injected none is a problem."""
    profiles = list(scenarios.PROFILES)
    sync_points = ["after_pull", "after_load", "acknowledgement:1", "acknowledgement:9"]
    ship_points = [
        "after_shipment_file_commit",
        "after_queue",
        "status_update:1",
        "status_update:7",
    ]
    burst, rate = world.rate_burst, world.rate_per_second
    met: dict[str, Counter] = {}
    rounds_run: Counter = Counter()

    def one_round(number: int, profile: str, label: str) -> None:
        scenarios.use_profile(world, profile, burst, rate)
        _say(f"{world.name}: round {label}, {profile}")
        before = invariants.injected_faults(world)
        scenarios.crash_round(
            world,
            new_orders=25,
            sync_kills=[sync_points[number % len(sync_points)], "random"],
            ship_kills=[ship_points[number % len(ship_points)], "random"],
            share=0.6,
        )
        met.setdefault(profile, Counter()).update(invariants.injected_faults(world) - before)
        rounds_run[profile] += 1

    def missing(profile: str) -> list[str]:
        return [kind for kind in scenarios.faults_expected(profile) if not met[profile][kind]]

    for number in range(rounds):
        one_round(number, profiles[number % len(profiles)], f"{number + 1}/{rounds}")

    # Faults are drawn from the emulator's seeded stream and a round makes only 60 to 90 calls:
    # seed 2147154973 drew no value under 0.1 in the 97 draws after its 5xx storm, so its round
    # of dropped connections met none, and the report still passed. A profile whose faults
    # have not struck gets more rounds; one that still injected none fails the run.
    number = rounds
    for profile in profiles:
        for _ in range(EXTRA_ROUNDS_MAX):
            if profile not in met or not missing(profile):
                break
            number += 1
            one_round(number - 1, profile, f"{number} (extra: no {', '.join(missing(profile))})")
        if profile not in met:
            report.problems.append(
                f"{world.name}: profile {profile!r} never ran "
                f"({rounds} rounds for {len(profiles)} profiles)"
            )
        elif missing(profile):
            report.problems.append(
                f"{world.name}: profile {profile!r} injected no {', '.join(missing(profile))} "
                f"in {rounds_run[profile]} rounds"
            )
    scenarios.use_profile(world, "calm", burst, rate)
    report.notes.append(
        "crash matrix faults by profile: "
        + "; ".join(
            f"{profile}"
            + (f" ({rounds_run[profile]} rounds)" if rounds_run[profile] > 1 else "")
            + ": "
            + (", ".join(f"{n} {kind}" for kind, n in faults.items()) or "none")
            for profile, faults in met.items()
        )
    )


def independent(world: World, report: Report, rounds: int) -> None:
    """The independent chaos run: its faults throughout, random kills only."""
    world.emulator.faults = scenarios.INDEPENDENT
    for number in range(rounds):
        # Every other round brings more than a page of NEW orders, so imports land mid-paging.
        new_orders = 260 if number % 2 else 30
        _say(f"{world.name}: round {number + 1}/{rounds}, {new_orders} new orders")
        scenarios.crash_round(
            world,
            new_orders=new_orders,
            sync_kills=["random", "random"],
            ship_kills=["random", "random"],
            share=0.5,
            cancel=2,
        )
    report.notes.append(
        "independent chaos faults: 15 % 5xx, 5 % dropped, token expiry every 40 calls, "
        "random Retry-After, 3 imports per page read after the first, 10 % of listings "
        "followed by a marketplace cancellation, 2 more cancellations a round"
    )


def overlapping(world: World, report: Report, rounds: int) -> None:
    """Sync and ship started together each round, then settled; counts lock failures and 429s."""
    world.until_clean(SYNC)
    for number in range(rounds):
        _say(f"{world.name}: round {number + 1}/{rounds}")
        scenarios.overlap_round(world, new_orders=20, share=0.6, overlap=report.overlap)
        scenarios.settle(world)


def hostile_input(world: World, report: Report, big_file_mb: int) -> None:
    """Malformed and odd orders, hostile files, then the big file with the ship's peak memory."""
    world.import_malformed(hostile.MALFORMED_ORDERS)
    odd = world.import_malformed(hostile.ODD_ORDERS, malformed=False)
    world.until_clean(SYNC)
    idle = world.run(SHIP)
    outside = world.root / "outside"
    files = hostile.drop_hostile_files(world, outside)
    world.until_clean(SHIP)
    report.problems += [f"hostile: {p}" for p in scenarios.check_odd_orders(world, odd)]
    report.problems += [
        f"hostile: {p}" for p in scenarios.check_hostile_files(world, files, outside)
    ]
    read = sum(1 for f in files if f.outcome != "UNREAD")
    report.notes.append(
        f"hostile input: {len(hostile.MALFORMED_ORDERS)} malformed orders, "
        f"{len(hostile.ODD_ORDERS)} odd but valid orders, {read} hostile files, "
        f"{len(files) - read} entries the inbox must not read"
    )

    path, rows = hostile.write_big_file(world, big_file_mb * 1_000_000, orders=500)
    size = path.stat().st_size
    runs = world.until_clean(SHIP)
    big = runs[0]
    report.notes.append(
        f"{size / 1e6:.0f} MB shipment file: {rows:,} rows read in {big.seconds:.0f} s by a ship "
        f"run with peak RSS {big.peak_rss_bytes / 2**20:.0f} MiB (an idle ship run: "
        f"{idle.peak_rss_bytes / 2**20:.0f} MiB)"
    )


def format_report(report: Report) -> str:
    """The figures table, then one line per note and per problem."""
    head = (
        "| seller | runs | killed | faults injected | orders | lost | duplicated "
        "| updates | lost | duplicated | repeated |"
    )
    lines = [head, "|" + "---|" * 11]
    total = Figures("total")
    for f in report.figures:
        lines.append(_row(f))
        for name in ("runs", "kills", "orders", "orders_lost", "orders_duplicated", "updates"):
            setattr(total, name, getattr(total, name) + getattr(f, name))
        for name in ("updates_lost", "updates_duplicated", "updates_repeated"):
            setattr(total, name, getattr(total, name) + getattr(f, name))
        total.faults.update(f.faults)
    lines.append(_row(total, bold=True))

    minutes = (time.monotonic() - report.started) / 60
    lines += ["", f"Seed {report.seed}, {minutes:.0f} minutes."]
    faults = ", ".join(f"{count:,} {name}" for name, count in total.faults.items() if count)
    lines.append(f"Faults injected: {faults}.")
    quarantined = sum(f.orders_quarantined for f in report.figures)
    refused = sum(f.updates_refused for f in report.figures)
    cancelled = sum(f.orders_cancelled for f in report.figures)
    lines.append(
        f"Orders quarantined as malformed: {quarantined}; cancelled at GoDataFeed: "
        f"{cancelled}; shipments refused because the marketplace had cancelled first: "
        f"{refused}."
    )
    overlap = report.overlap
    lines.append(
        f"Overlapping runs: {len(overlap.runs)} processes, {len(overlap.failed)} failed, "
        f"{len(overlap.lock_failures)} DuckDB lock failures, {overlap.throttled} answered 429."
    )
    lines += [f"{note[0].upper()}{note[1:]}." for note in report.notes]
    if report.scan is not None:
        scan = report.scan
        lines.append(
            f"Secrets: {scan.files:,} files ({scan.bytes / 2**20:,.0f} MiB; "
            f"{scan.duckdb_files} DuckDB, {scan.sqlite_files} SQLite) searched for the consumer "
            f"keys and {report.secrets_scanned - len(report.figures)} tokens: "
            f"{len(scan.leaks)} found."
        )
    if report.problems:
        lines += ["", f"{len(report.problems)} PROBLEMS:"] + [f"- {p}" for p in report.problems]
    return "\n".join(lines)


def record(path: Path, table: str) -> None:
    """Replaces the figures between the markers in a Markdown file."""
    text = path.read_text(encoding="utf-8")
    before, _, rest = text.partition(FIGURES_START)
    _, _, after = rest.partition(FIGURES_END)
    path.write_text(f"{before}{FIGURES_START}\n{table}\n{FIGURES_END}{after}", encoding="utf-8")


def _row(f: Figures, bold: bool = False) -> str:
    cells = [
        f.name,
        f.runs,
        f.kills,
        f.faults_injected,
        f.orders,
        f.orders_lost,
        f.orders_duplicated,
        f.updates,
        f.updates_lost,
        f.updates_duplicated,
        f.updates_repeated,
    ]
    text = [cell if isinstance(cell, str) else f"{cell:,}" for cell in cells]
    if bold:
        text = [f"**{cell}**" for cell in text]
    return "| " + " | ".join(text) + " |"


def _two_at_a_time(report: Report, *jobs) -> None:
    """Runs each (function, world, argument) in its own thread; a crash is a problem."""

    def guarded(work, world, argument):
        try:
            work(world, report, argument)
        except Exception as error:
            report.problems.append(f"{world.name}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=guarded, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


_print_lock = threading.Lock()


def _say(text: str) -> None:
    with _print_lock:
        print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
