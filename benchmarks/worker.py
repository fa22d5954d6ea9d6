"""`python -m benchmarks.worker TASK ARGS_JSON`: one measurement, its result as a JSON line.

The parent (harness.run_worker) starts this in a fresh interpreter and reads its peak memory.
Progress and logs go to stderr; stdout carries only the result.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys

# Task name -> (module under benchmarks, function); imported only when asked for, so that a
# contender's process holds its own imports and nothing else.
TASKS = {
    "ours": ("pull_load", "ours"),
    "dlt": ("pull_load", "dlt"),
    "naive": ("pull_load", "naive"),
    "lifecycle": ("lifecycle", "run"),
    "copy_raw": ("datasets", "copy_raw"),
    "transform_load": ("datasets", "transform_load"),
    "write_floor": ("datasets", "write_floor"),
    "acknowledge_all": ("datasets", "acknowledge_all"),
    "queue_shipments": ("datasets", "queue_shipments"),
    "idle_sync_work": ("sync_cost", "idle_sync_work"),
}


def main(argv: list[str]) -> int:
    task, args = argv[0], json.loads(argv[1])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    module, function = TASKS[task]
    result = getattr(importlib.import_module(f"benchmarks.{module}"), function)(**args)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
