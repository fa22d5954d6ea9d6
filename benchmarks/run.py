"""`python -m benchmarks [quick|full|smoke]`: every measurement in one run, printed as one table.

The measurements run in this order, each contender in a child process of its own:

1. API efficiency: a backlog's lifecycle (pull, acknowledge, ship) against an emulator whose
   bucket is scaled up to burst 50, 100 calls a second; calls per order, pace, 429s.
2. Pull and load: the emulator's NEW orders into DuckDB by the pipeline, by dlt and by a
   row-by-row baseline, all reading the same warmed-up emulator.
3. Transform and load: raw -> oms on warehouses of the measured sizes (copies of 2's pull),
   and the floor under it: the same output rows written into empty tables and committed.
4. Incremental cost: a sync that finds nothing new, on two history sizes.
5. Shipment files: a CSV with one row per order validated and queued into the ledger.
6. Dagster overhead: `gdf-pipeline sync` with nothing to do, as a process, start to exit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import REPO, run_worker
from benchmarks.table import Row, figures, format_table

SEED = 2026
PAGE_SIZE = 250
LIFECYCLE_BURST = 50
LIFECYCLE_PER_SECOND = 100.0


@dataclass(frozen=True)
class Mode:
    name: str
    lifecycle_orders: int
    pull_orders: int
    naive_orders: int
    transform_sizes: tuple[int, ...]
    history_sizes: tuple[int, int]
    shipment_rows: int


MODES = {
    "quick": Mode("quick", 1_000, 100_000, 2_000, (100_000,), (10_000, 100_000), 100_000),
    "full": Mode(
        "full", 2_000, 100_000, 20_000, (100_000, 1_000_000), (100_000, 1_000_000), 100_000
    ),
    # Tiny sizes for the harness's own test: every row, no meaningful figure.
    "smoke": Mode("smoke", 20, 500, 50, (500,), (200, 500), 200),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    name = argv[0] if argv else os.environ.get("BENCH", "quick")
    if name not in MODES:
        print(f"usage: python -m benchmarks [{'|'.join(MODES)}]", file=sys.stderr)
        return 2
    mode = MODES[name]
    work = Path(os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="gdf-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        rows, results = measure(mode, work)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    print(format_table(rows, title=f"gdf-pipeline benchmarks, {mode.name} mode"))
    print(f"\nMeasured in {time.monotonic() - started:.0f} s.")
    if os.environ.get("BENCH_RESULTS"):
        Path(os.environ["BENCH_RESULTS"]).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def measure(mode: Mode, work: Path) -> tuple[list[Row], dict]:
    results: dict = {"mode": mode.name}
    # The pull emulator generates and encodes its orders on the other CPU while the
    # lifecycle, which mostly waits for its rate limit, runs.
    pull_emulator = _start_emulator_process(mode.pull_orders)
    try:
        _progress(f"1. lifecycle of {mode.lifecycle_orders} orders, rate-limited")
        results["lifecycle"] = _lifecycle(mode, work / "lifecycle")
        results["pull_load"] = _pull_load(mode, work / "pull", _emulator_address(pull_emulator))
    finally:
        pull_emulator.stdin.close()
        pull_emulator.wait(timeout=60)

    # The later steps copy the raw orders of a pull: the first run's warehouse holds them.
    source = str(work / "pull" / "run-1" / "ours.duckdb")
    results["transform"], results["write_floor"] = {}, {}
    for size in mode.transform_sizes:
        _progress(f"3. transform and load of {size} orders")
        database = work / f"history-{size}" / "warehouse.duckdb"
        database.parent.mkdir(parents=True)
        run_worker("copy_raw", source=source, target=str(database), orders=size)
        results["transform"][size] = run_worker("transform_load", database=str(database))
        _progress(f"3. the same {size} orders written again, already transformed")
        floor = database.parent / "write-floor.duckdb"
        results["write_floor"][size] = run_worker(
            "write_floor", source=str(database), target=str(floor)
        )
        floor.unlink()

    results["idle_sync"] = {}
    for size in mode.history_sizes:
        _progress(f"4. sync with nothing new on {size} orders of history")
        data_dir = _history(size, source, work, results)
        results["idle_sync"][size] = _idle_sync(data_dir)

    _progress(f"5. shipment file of {mode.shipment_rows} rows")
    results["shipments"] = _shipments(mode, work, results)

    _progress("6. gdf-pipeline sync with nothing to do")
    results["dagster"] = _dagster_sync(work / f"history-{mode.history_sizes[1]}")
    return figures(mode, results), results


def _lifecycle(mode: Mode, work: Path) -> dict:
    from gdf_pipeline.emulator import Emulator

    work.mkdir(parents=True)
    with Emulator(
        orders=mode.lifecycle_orders,
        seed=SEED,
        rate_burst=LIFECYCLE_BURST,
        rate_per_second=LIFECYCLE_PER_SECOND,
    ) as emulator:
        result = run_worker(
            "lifecycle",
            url=emulator.url,
            consumer_key=emulator.consumer_key,
            work_dir=str(work),
            burst=LIFECYCLE_BURST,
            per_second=LIFECYCLE_PER_SECOND,
        )
        stats = emulator.stats
        result["emulator_requests"] = stats.requests
        result["emulator_429s"] = stats.rate_limited
        result["emulator_shipped"] = emulator.count("SHIPPED")
    return result


# Runs of each of the two contenders that are compared, taken in turns; the fastest of each
# counts. Other work on a shared machine only ever slows a run down, and by 20 % or more.
PULL_RUNS = 2


def _pull_load(mode: Mode, work: Path, emulator: dict) -> dict:
    work.mkdir(parents=True)
    pages = -(-mode.pull_orders // PAGE_SIZE)
    runs: dict[str, list[dict]] = {"ours": [], "dlt": []}
    for number in range(1, PULL_RUNS + 1):
        run_dir = work / f"run-{number}"
        run_dir.mkdir()
        _progress(f"2. pull and load of {mode.pull_orders} orders: gdf-pipeline ({number})")
        runs["ours"].append(run_worker("ours", database=str(run_dir / "ours.duckdb"), **emulator))
        _progress(f"2. pull and load of {mode.pull_orders} orders: dlt ({number})")
        runs["dlt"].append(
            run_worker(
                "dlt",
                database=str(run_dir / "dlt.duckdb"),
                work_dir=str(run_dir),
                pages=pages,
                **emulator,
            )
        )
    _progress(f"2. pull and load of the first {mode.naive_orders} orders: row by row")
    naive = run_worker(
        "naive", database=str(work / "naive.duckdb"), max_orders=mode.naive_orders, **emulator
    )
    ours, dlt = (min(runs[name], key=lambda run: run["seconds"]) for name in ("ours", "dlt"))
    for name, best in (("ours", ours), ("dlt", dlt)):
        best["all_seconds"] = [run["seconds"] for run in runs[name]]
    return {"ours": ours, "dlt": dlt, "naive": naive}


def _history(size: int, source: str, work: Path, results: dict) -> Path:
    """A data folder whose warehouse holds `size` loaded and acknowledged orders."""
    data_dir = work / f"history-{size}"
    database = data_dir / "warehouse.duckdb"
    if not database.exists():
        data_dir.mkdir(parents=True)
        run_worker("copy_raw", source=source, target=str(database), orders=size)
        run_worker("transform_load", database=str(database))
    run_worker("acknowledge_all", database=str(database))
    return data_dir


def _idle_sync(data_dir: Path) -> dict:
    from gdf_pipeline.emulator import Emulator

    # No NEW orders: the sync lists, finds nothing, loads nothing, posts nothing.
    with Emulator(orders=0, seed=SEED) as emulator:
        return run_worker(
            "idle_sync_work",
            url=emulator.url,
            consumer_key=emulator.consumer_key,
            data_dir=str(data_dir),
        )


def _shipments(mode: Mode, work: Path, results: dict) -> dict:
    size = mode.history_sizes[1]
    target = work / "shipments"
    target.mkdir()
    database = target / "warehouse.duckdb"
    shutil.copyfile(work / f"history-{size}" / "warehouse.duckdb", database)
    return run_worker(
        "queue_shipments", database=str(database), work_dir=str(target), rows=mode.shipment_rows
    )


def _dagster_sync(data_dir: Path) -> dict:
    from gdf_pipeline.emulator import Emulator

    command = [str(Path(sys.executable).with_name("gdf-pipeline")), "sync"]
    with Emulator(orders=0, seed=SEED) as emulator:
        env = {
            **os.environ,
            "GDF_API_URL": emulator.url,
            "GDF_CONSUMER_KEY": emulator.consumer_key,
            "GDF_DATA_DIR": str(data_dir),
            "DAGSTER_HOME": str(data_dir / "dagster_home"),
        }
        started = time.monotonic()
        finished = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
        seconds = time.monotonic() - started
    if finished.returncode != 0:
        raise RuntimeError(f"gdf-pipeline sync failed:\n{finished.stdout}\n{finished.stderr}")
    return {"seconds": seconds, "history": int(data_dir.name.split("-")[1])}


def _start_emulator_process(orders: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.emulator_process", str(orders), str(SEED)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _emulator_address(process: subprocess.Popen) -> dict:
    line = process.stdout.readline()
    if not line:
        raise RuntimeError("the benchmark emulator process stopped before it was ready")
    return json.loads(line)


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
