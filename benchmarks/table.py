"""The one table the benchmarks print: each figure beside its target and a pass/fail mark."""

from __future__ import annotations

from dataclasses import dataclass

PAGE_SIZE = 250
ALLOWED_RATE = 100.0
GIB = 1024**3

CALLS_PER_ORDER_MAX = 2 + 1 / PAGE_SIZE + 0.01
PACE_MIN = 0.95
DLT_RATIO_MIN = 2.0
TRANSFORM_MIN = 100_000
MEMORY_MAX = 2 * GIB
IDLE_SYNC_MAX = 1.0


@dataclass(frozen=True)
class Row:
    number: str
    measurement: str
    figure: str
    peak: str = ""
    target: str = "-"
    ok: bool | None = None
    note: str = ""


def figures(mode, results: dict) -> list[Row]:
    """The table's rows, in the order of the measurements."""
    return [
        *_api_rows(mode, results["lifecycle"]),
        *_pull_rows(mode, results["pull_load"]),
        *_transform_rows(results["transform"], results["write_floor"]),
        *_idle_rows(mode, results["idle_sync"]),
        *_shipment_rows(results["shipments"]),
        *_dagster_rows(results["dagster"], results["idle_sync"]),
    ]


def _api_rows(mode, lifecycle: dict) -> list[Row]:
    orders = lifecycle["orders"]
    backlog = f"{orders:,} orders" + ("" if orders >= 2000 else " (quick mode; full: 2,000)")
    calls = lifecycle["emulator_requests"]
    per_order = calls / orders
    rate = lifecycle["client_calls"] / lifecycle["api_seconds"]
    pace = rate / ALLOWED_RATE
    throttled = lifecycle["emulator_429s"]
    return [
        Row(
            "1a",
            f"API calls per order, pull + acknowledge + ship, {backlog}",
            f"{per_order:.4f}",
            target=f"<= {CALLS_PER_ORDER_MAX:.4f}",
            ok=per_order <= CALLS_PER_ORDER_MAX,
            note=f"{calls:,} calls for {orders:,} orders",
        ),
        Row(
            "1b",
            "Achieved call rate / allowed (bucket 50, 100/s)",
            f"{pace:.3f}",
            target=f">= {PACE_MIN}",
            ok=pace >= PACE_MIN,
            note=f"{rate:.1f} calls/s while calling",
        ),
        Row("1c", "429 answers over the lifecycle", f"{throttled}", target="0", ok=throttled == 0),
    ]


def _pull_rows(mode, pull: dict) -> list[Row]:
    ours, dlt, naive = pull["ours"], pull["dlt"], pull["naive"]
    ours_rate, dlt_rate = _rate(ours, "orders"), _rate(dlt, "orders")
    ratio = ours_rate / dlt_rate
    size = f"{ours['orders']:,}"
    return [
        Row(
            "2a",
            f"Pull + load {size} orders: gdf-pipeline (raw -> oms)",
            f"{ours_rate:,.0f} orders/s",
            _gib(ours),
            target=f">= {DLT_RATIO_MIN:.0f}x dlt",
            ok=ratio >= DLT_RATIO_MIN,
            note=f"{ratio:.2f}x dlt; fastest of {_seconds(ours)}; pull "
            f"{ours['phases']['pull']:.1f} s, store {ours['phases']['store']:.1f} s, "
            f"load {ours['phases']['load']:.1f} s",
        ),
        Row(
            "2b",
            f"Pull + load {dlt['orders']:,} orders: dlt rest_api -> duckdb (parquet)",
            f"{dlt_rate:,.0f} orders/s",
            _gib(dlt),
            note=f"reference for 2a; fastest of {_seconds(dlt)}",
        ),
        Row(
            "2c",
            f"Pull + load first {naive['orders']:,} orders: row-by-row INSERT",
            f"{_rate(naive, 'orders'):,.0f} orders/s",
            _gib(naive),
            note=f"{ours_rate / _rate(naive, 'orders'):.0f}x slower than 2a",
        ),
    ]


def _seconds(result: dict) -> str:
    """The wall times of a contender's runs, as "12.3 s / 14.0 s"."""
    return " / ".join(
        f"{seconds:.1f} s" for seconds in result.get("all_seconds", [result["seconds"]])
    )


def _transform_rows(transform: dict, write_floor: dict) -> list[Row]:
    rows = []
    has_million = any(int(size) >= 1_000_000 for size in transform)
    for size, result in sorted(transform.items(), key=lambda item: int(item[0])):
        rate = _rate(result, "orders")
        floor = write_floor[size]
        floor_rate = _rate(floor, "orders")
        memory_ok = result["peak_rss_bytes"] < MEMORY_MAX
        rows.append(
            Row(
                "3",
                f"Transform + load raw -> oms, {int(size):,} orders",
                f"{rate:,.0f} orders/s",
                _gib(result),
                target=f">= {TRANSFORM_MIN:,}/s, < 2 GiB",
                ok=rate >= TRANSFORM_MIN and memory_ok,
                note=f"{result['seconds']:.2f} s, {result['lines']:,} lines, "
                f"{result['seconds'] / floor['seconds']:.1f}x the write floor"
                + ("" if has_million else "; 1M in full mode"),
            )
        )
        rows.append(
            Row(
                "3w",
                f"Write floor: 3's output rows, {int(size):,} orders, inserted and committed",
                f"{floor_rate:,.0f} orders/s",
                _gib(floor),
                note=f"{floor['seconds']:.2f} s; no JSON read, nothing computed: the least any "
                "load into these tables can take here",
            )
        )
    return rows


def _idle_rows(mode, idle: dict) -> list[Row]:
    small, large = sorted(idle, key=int)
    first, second = idle[small]["seconds"], idle[large]["seconds"]
    steps = ", ".join(f"{step} {seconds:.2f}" for step, seconds in idle[large]["steps"].items())
    dagster = sum(idle[large]["dagster_steps"].values())
    at_million = int(large) >= 1_000_000
    return [
        Row(
            "4",
            f"Sync, 0 new orders: own work at {int(small):,} / {int(large):,} history",
            f"{first:.2f} s / {second:.2f} s",
            target="< 1 s at 1M, flat",
            ok=second < IDLE_SYNC_MAX and second < max(first * 1.5, first + 0.1),
            note=f"at {int(large):,}: {steps}; in a Dagster run its steps take {dagster:.1f} s"
            + ("" if at_million else "; 1M in full mode"),
        )
    ]


def _shipment_rows(shipments: dict) -> list[Row]:
    rate = _rate(shipments, "rows")
    return [
        Row(
            "5",
            f"Shipment CSV, {shipments['rows']:,} rows validated and queued",
            f"{rate:,.0f} rows/s",
            _gib(shipments),
            note=f"{shipments['queued']:,} queued, {shipments['rejected']:,} rejected, "
            f"{shipments['seconds']:.2f} s",
        )
    ]


def _dagster_rows(dagster: dict, idle: dict) -> list[Row]:
    own = idle.get(dagster["history"])
    note = f"{dagster['history']:,} orders of history"
    if own:
        note += f"; own work {own['seconds']:.2f} s of it"
    return [
        Row(
            "6",
            "`gdf-pipeline sync` with nothing to do, process start to exit",
            f"{dagster['seconds']:.1f} s",
            note=note,
        )
    ]


def _rate(result: dict, unit: str) -> float:
    return result[unit] / result["seconds"] if result["seconds"] else 0.0


def _gib(result: dict) -> str:
    return f"{result['peak_rss_bytes'] / GIB:.2f} GiB"


def format_table(rows: list[Row], title: str) -> str:
    """A Markdown table, readable as it prints in a terminal and pasteable into the docs."""
    header = ("#", "measurement", "figure", "peak RSS", "target", "ok", "note")
    cells = [
        (
            row.number,
            row.measurement,
            row.figure,
            row.peak,
            row.target,
            "-" if row.ok is None else ("PASS" if row.ok else "FAIL"),
            row.note,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def line(values) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([title, "", line(header), rule, *(line(cells_) for cells_ in cells)])
