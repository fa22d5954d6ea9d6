"""`gdf-pipeline demo` end to end in a fresh folder: it succeeds, ends with the summary and where
to look next, and the `gdf-pipeline status` output the README shows is what a real run prints
(times, durations and paths aside)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], data_dir: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GDF_")}
    env["GDF_DATA_DIR"] = str(data_dir)
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "gdf_pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def normalise(text: str) -> list[str]:
    """Lines without what differs between runs: times, run durations, paths; spacing folded."""
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", "<time>", text)
    text = re.sub(r"\(from [^)]*\)", "(from <path>)", text)
    text = re.sub(r"(SUCCESS +<time> +)[\d.]+", r"\1<seconds>", text)
    text = re.sub(r"-{3,}", "---", text)
    return [" ".join(line.split()) for line in text.strip().splitlines()]


def test_demo_runs_end_to_end_and_the_readme_status_matches_it(tmp_path):
    demo = run(["demo"], tmp_path)

    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "GoDataFeed now holds 46 acknowledged, 12 shipped, 2 cancelled orders." in demo.stdout
    assert "dagster dev -w workspace.yaml" in demo.stdout
    assert "FAILED" not in demo.stdout

    status = run(["status"], tmp_path / "demo")
    assert status.returncode == 0, status.stderr
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme.split("<!-- status sample -->", 2)[1].split("```text", 1)[1].split("```")[0]
    assert normalise(shown) == normalise(status.stdout)
