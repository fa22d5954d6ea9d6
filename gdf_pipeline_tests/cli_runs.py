"""Running `gdf-pipeline` commands as real processes against an emulator, for the tests."""

from __future__ import annotations

import os
import subprocess
import sys


def cli_env(emulator, data_dir, **extra) -> dict:
    """The environment of a pipeline process pointed at the emulator and a data folder."""
    env = {
        **os.environ,
        "GDF_API_URL": emulator.url,
        "GDF_CONSUMER_KEY": emulator.consumer_key,
        "GDF_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(data_dir / "dagster_home"),
        "GDF_RATE_LIMIT_BURST": "10",
        "GDF_RATE_LIMIT_PER_SECOND": "20",
    }
    env.pop("GDF_CRASH_AT", None)
    env.update(extra)
    return env


def run_cli(emulator, data_dir, *args: str, **extra) -> subprocess.CompletedProcess:
    """Runs `gdf-pipeline ARGS` to the end; returns its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "gdf_pipeline.cli", *args],
        env=cli_env(emulator, data_dir, **extra),
        capture_output=True,
        text=True,
        timeout=600,
    )


def start_cli(emulator, data_dir, *args: str, **extra) -> subprocess.Popen:
    """Starts `gdf-pipeline ARGS` without waiting for it."""
    return subprocess.Popen(
        [sys.executable, "-m", "gdf_pipeline.cli", *args],
        env=cli_env(emulator, data_dir, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
