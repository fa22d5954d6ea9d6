"""Crash points for the fault-injection tests.

The crash tests need a sync to die at an exact step boundary, which no outside timer can hit
reliably. Setting GDF_CRASH_AT=<point> (or <point>:<n> for the n-th pass) makes the process
SIGKILL itself there, exactly as a power cut or an OOM kill would. Unset, this costs one
dictionary lookup per call.

The points, in the order a sync and then a shipment run pass them: after_pull, after_load,
acknowledgement (after each acknowledgement is posted, before its outcome is recorded),
after_shipment_file_commit (a file's rows are in the ledger, the file not yet moved),
after_queue, status_update (after each status update is posted, before its outcome is
recorded).
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_passes: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """Kills this process at once if GDF_CRASH_AT names this point (and this pass)."""
    wanted = os.environ.get("GDF_CRASH_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _passes[name] += 1
    if not nth or _passes[name] == int(nth):
        os.kill(os.getpid(), signal.SIGKILL)
