"""Each step's counts, kept in the warehouse so that `gdf-pipeline status` can sum them by day."""

from __future__ import annotations

import json

import duckdb


def record_step_counts(
    conn: duckdb.DuckDBPyConnection, run_id: str, job_name: str, step: str, counts: dict
) -> None:
    """Stores one step's numeric counts; a repeated step of the same run replaces its row."""
    numbers = {key: value for key, value in counts.items() if isinstance(value, int | float)}
    conn.execute(
        "INSERT OR REPLACE INTO sync.step_counts "
        "(run_id, job_name, step, recorded_at, api_calls, api_429s, counts) "
        "VALUES (?, ?, ?, current_timestamp, ?, ?, ?)",
        [
            run_id,
            job_name,
            step,
            int(numbers.get("api_calls", 0)),
            int(numbers.get("api_429s", 0)),
            json.dumps(numbers),
        ],
    )
