"""Running one measurement in a child process and reading its result and its peak memory.

Every contender runs in a fresh interpreter, so one's imports, caches and heap never count for
another. The child prints its result as one JSON line on stdout; the parent reaps it with
`os.wait4`, whose resource usage is that child's own (ru_maxrss: its peak resident set).
The emulator stays in the parent: the child's peak memory is the contender's alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.02


class WorkerFailed(RuntimeError):
    """A measurement's child process failed; the message carries the end of its stderr."""


def run_worker(task: str, timeout: float = 3600.0, env: dict | None = None, **args) -> dict:
    """Runs `benchmarks.worker TASK` with `args`; returns its result plus wall and peak memory.

    Adds `wall_seconds` (process start to exit) and `peak_rss_bytes` to the child's result.
    Raises WorkerFailed when the child exits non-zero, prints no result or overruns `timeout`.
    """
    command = [sys.executable, "-m", "benchmarks.worker", task, json.dumps(args)]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.monotonic()
        child = subprocess.Popen(
            command, cwd=REPO, stdout=stdout, stderr=stderr, env={**os.environ, **(env or {})}
        )
        status, usage = _reap(child, started + timeout)
        wall = time.monotonic() - started
        stdout.seek(0)
        stderr.seek(0)
        lines = stdout.read().decode("utf-8", "replace").strip().splitlines()
        errors = stderr.read().decode("utf-8", "replace").strip().splitlines()

    if status is None:
        raise WorkerFailed(f"{task} ran longer than {timeout:.0f} s and was stopped")
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or not lines:
        raise WorkerFailed(f"{task} exited with {code}:\n" + "\n".join(errors[-25:]))
    result = json.loads(lines[-1])
    result["wall_seconds"] = wall
    # Linux reports ru_maxrss in KiB.
    result["peak_rss_bytes"] = usage.ru_maxrss * 1024
    return result


def _reap(child: subprocess.Popen, deadline: float):
    # Reaped here rather than by Popen.wait, which would discard the child's resource usage.
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            return status, usage
        if time.monotonic() > deadline:
            child.kill()
            os.wait4(child.pid, 0)
            child.returncode = -9
            return None, None
        time.sleep(POLL_SECONDS)
