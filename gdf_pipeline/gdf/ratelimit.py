"""A leaky bucket shared by every process that calls GoDataFeed with the same consumer key.

GoDataFeed meters each consumer key with a leaky bucket (capacity 50, draining 2 calls a
second) and answers 429 to a call that finds it full. A scheduled sync and a shipment run can
overlap, so pacing each process on its own would let them overflow the key's bucket together.
The bucket's state therefore lives in a small file under the state directory, read and written
under an exclusive `flock`, and every process reserves its send time there before each call.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

# Head-room against GoDataFeed's own bucket: one call of capacity absorbs network jitter (a
# call that left late arriving next to the following one), and a rate a few percent lower lets
# slack accumulate over a long backlog. The achieved rate stays at 97 % of the allowed one.
CAPACITY_MARGIN = 1
RATE_MARGIN = 0.03
# Calls that may hold a reserved, not yet reached send time at once (threads and processes on
# one key). The bucket state never runs further ahead of the clock than the capacity plus these.
MAX_WAITING_CALLS = 64
# Bytes of the state file: a float's repr padded with spaces, and a newline.
STATE_WIDTH = 32


class SharedLeakyBucket:
    """Paces calls for one consumer key across every process that shares `state_dir`.

    The file holds one number: the wall-clock time at which the bucket, with every call
    admitted so far, will have drained empty. The consumer key itself is never written: the
    file is named from a hash of it.
    """

    def __init__(
        self,
        state_dir: Path,
        consumer_key: str,
        burst: int = 50,
        per_second: float = 2.0,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not consumer_key:
            raise ValueError("the rate limiter needs the consumer key it paces (GDF_CONSUMER_KEY)")
        if burst < 1:
            raise ValueError("GDF_RATE_LIMIT_BURST must be at least 1")
        if not per_second > 0 or not math.isfinite(per_second):
            raise ValueError("GDF_RATE_LIMIT_PER_SECOND must be a number above 0")
        self.burst = burst
        self.per_second = per_second
        self.capacity = max(1, burst - CAPACITY_MARGIN)
        self.interval = 1.0 / (per_second * (1.0 - RATE_MARGIN))
        digest = hashlib.sha256(f"gdf-pipeline rate limit\0{consumer_key}".encode()).hexdigest()
        self.path = Path(state_dir) / f"gdf-rate-limit-{digest[:24]}.bucket"
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:
        return (
            f"SharedLeakyBucket(path={str(self.path)!r}, burst={self.burst}, "
            f"per_second={self.per_second})"
        )

    def acquire(self) -> float:
        """Block until one call may be sent under the shared limit; return the seconds waited.

        The send time is reserved under the file lock and the wait happens after the lock is
        released, so processes queue in the order they asked and never hold the lock asleep.
        """
        with self._locked_state() as state:
            now = self._clock()
            empty_at = self._bounded(state.read(), now)
            # A call fits once the level has drained to capacity - 1; each call adds `interval`
            # seconds of draining.
            send_at = max(now, empty_at - (self.capacity - 1) * self.interval)
            state.write(max(empty_at, send_at) + self.interval)
        wait = send_at - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def mark_full(self) -> None:
        """Record that GoDataFeed answered 429: every process sharing the key slows down.

        A 429 means the server's bucket is fuller than this one believes (another client on
        the same key, or a restart that lost the state), so the shared state is topped up.
        """
        with self._locked_state() as state:
            now = self._clock()
            empty_at = self._bounded(state.read(), now)
            state.write(max(empty_at, now + self.capacity * self.interval))

    def _bounded(self, empty_at: float, now: float) -> float:
        # Reservations ahead of the clock are bounded, which undoes a wall clock that jumped
        # back and a file written with other settings instead of waiting them out.
        ahead = (self.capacity + MAX_WAITING_CALLS) * self.interval
        return min(max(empty_at, now), now + ahead)

    def _locked_state(self) -> _LockedState:
        return _LockedState(self.path)


class _LockedState:
    """The bucket file opened and exclusively locked for one read-modify-write."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> _LockedState:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Opened afresh each time: flock belongs to the open file description, so a descriptor
        # inherited across fork() would not exclude the parent from the child.
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self._fd)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Closing the descriptor releases the lock.
        os.close(self._fd)

    def read(self) -> float:
        raw = os.pread(self._fd, 64, 0)
        try:
            value = float(raw.decode("ascii").strip() or 0.0)
        except (UnicodeDecodeError, ValueError):
            return 0.0
        return value if math.isfinite(value) else 0.0

    def write(self, empty_at: float) -> None:
        # Written over the old value at a fixed width, without truncating first: a truncate
        # costs about a millisecond on every paced call, a tenth of a call at 100 calls a second.
        data = f"{empty_at!r}".ljust(STATE_WIDTH - 1).encode("ascii") + b"\n"
        if len(data) > STATE_WIDTH or os.fstat(self._fd).st_size > STATE_WIDTH:
            os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
