"""`gdf-pipeline status`: whether orders flow and what is stuck, at a glance or as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
from dagster import DagsterInstance, RunsFilter

from gdf_pipeline.settings import Settings
from gdf_pipeline.warehouse import Warehouse, WarehouseLockTimeout

# The status waits this long for a running step to release the warehouse, then reads the
# analytics copy instead, which is at most one run old.
LOCK_WAIT_SECONDS = 5.0

_QUERIES = {
    "orders_by_status": "SELECT status, count(*) FROM oms.orders GROUP BY 1 ORDER BY 1",
    "acknowledgements_by_status": (
        "SELECT status, count(*) FROM sync.acknowledgements GROUP BY 1 ORDER BY 1"
    ),
    "status_updates_by_outcome": (
        "SELECT state, count(*) FROM sync.status_updates GROUP BY 1 ORDER BY 1"
    ),
}


def collect_status(settings: Settings, instance: DagsterInstance | None, runs: int = 5) -> dict:
    """Everything the status report shows, as plain data (what `--json` prints)."""
    report: dict = {"generated_at": _iso(datetime.now(UTC)), "source": None}
    report["last_runs"] = _last_runs(instance, runs) if instance else []

    warehouse = Warehouse(
        database=str(settings.warehouse_path),
        analytics_copy_path=str(settings.analytics_copy_path),
    )
    try:
        with warehouse.read_connection(timeout_seconds=LOCK_WAIT_SECONDS) as conn:
            report["source"] = str(settings.warehouse_path)
            report.update(_warehouse_numbers(conn))
    except WarehouseLockTimeout:
        with duckdb.connect(str(settings.analytics_copy_path), read_only=True) as conn:
            report["source"] = f"{settings.analytics_copy_path} (a run holds the warehouse)"
            report.update(_warehouse_numbers(conn))
    return report


def _last_runs(instance: DagsterInstance, limit: int) -> list[dict]:
    records = instance.get_run_records(filters=RunsFilter(), limit=limit)
    rows = []
    for record in records:
        started = record.start_time and datetime.fromtimestamp(record.start_time, UTC)
        ended = record.end_time and datetime.fromtimestamp(record.end_time, UTC)
        rows.append(
            {
                "job": record.dagster_run.job_name,
                "status": record.dagster_run.status.value,
                "started_at": _iso(started) if started else None,
                "seconds": round(record.end_time - record.start_time, 1)
                if record.end_time and record.start_time
                else None,
                "ended_at": _iso(ended) if ended else None,
                "run_id": record.dagster_run.run_id,
            }
        )
    return rows


def _warehouse_numbers(conn: duckdb.DuckDBPyConnection) -> dict:
    numbers = {name: dict(conn.execute(sql).fetchall()) for name, sql in _QUERIES.items()}
    numbers["backlog"] = [
        {"waiting_for": w, "age": age.split(": ", 1)[-1], "orders": n, "oldest_since": _iso(t)}
        for w, age, n, t in conn.execute("SELECT * FROM analytics.backlog").fetchall()
    ]
    oldest = conn.execute(
        "SELECT min(created_at) FROM sync.acknowledgements WHERE status = 'PENDING'"
    ).fetchone()[0]
    numbers["oldest_unacknowledged_minutes"] = (
        round((datetime.now(UTC) - oldest).total_seconds() / 60, 1) if oldest else None
    )
    numbers["quarantine"] = dict(
        conn.execute(
            "SELECT source, count(*) FROM analytics.quarantine "
            "WHERE resolved_at IS NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    calls, throttled = conn.execute(
        "SELECT coalesce(sum(api_calls), 0), coalesce(sum(api_429s), 0) FROM sync.step_counts "
        "WHERE recorded_at >= date_trunc('day', current_timestamp)"
    ).fetchone()
    numbers["api_today"] = {"calls": int(calls), "429s": int(throttled)}
    return numbers


def format_status(report: dict) -> str:
    """The report as a few small tables for a terminal."""
    sections = [f"gdf-pipeline status at {report['generated_at']} (from {report['source']})"]
    sections.append(
        _table(
            "Last runs",
            ["job", "status", "started", "seconds"],
            [[r["job"], r["status"], r["started_at"], r["seconds"]] for r in report["last_runs"]],
        )
    )
    sections.append(
        _table(
            "Orders",
            ["OMS status", "orders"],
            list(report["orders_by_status"].items()),
        )
    )
    sections.append(
        _table(
            "Acknowledgements",
            ["status", "orders"],
            list(report["acknowledgements_by_status"].items()),
        )
    )
    sections.append(
        _table(
            "Backlog",
            ["waiting for", "age", "orders", "oldest since"],
            [
                [b["waiting_for"], b["age"], b["orders"], b["oldest_since"]]
                for b in report["backlog"]
            ],
        )
    )
    sections.append(
        _table(
            "Status updates",
            ["outcome", "updates"],
            list(report["status_updates_by_outcome"].items()),
        )
    )
    oldest = report["oldest_unacknowledged_minutes"]
    api = report["api_today"]
    sections.append(
        _table(
            "At a glance",
            ["measure", "value"],
            [
                ["oldest unacknowledged order", f"{oldest} min" if oldest is not None else "none"],
                ["quarantined orders", report["quarantine"].get("order", 0)],
                [
                    "rejected shipment rows",
                    sum(n for source, n in report["quarantine"].items() if source != "order"),
                ],
                ["API calls today", api["calls"]],
                ["429s today", api["429s"]],
            ],
        )
    )
    return "\n\n".join(sections)


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=str)


def _table(title: str, header: list[str], rows: list) -> str:
    rows = [["" if cell is None else str(cell) for cell in row] for row in rows] or [
        ["(none)"] + [""] * (len(header) - 1)
    ]
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [title, line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    out = [text.rstrip() for text in out]
    return "\n".join(out)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None
