"""The shared leaky bucket: its pacing against GoDataFeed's own bucket, and its sharing.

Pacing is checked with a fake clock, exactly and instantly: the send times the bucket grants
are replayed into a model of GoDataFeed's bucket (capacity `burst`, draining `per_second`),
with and without network jitter, which must never answer 429, while the long-run rate stays
at 95 % of the allowed one or more. Two real processes then check that the state file is
shared through its lock.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from gdf_pipeline.gdf.ratelimit import MAX_WAITING_CALLS, SharedLeakyBucket

KEY = "ck-rate-limit-test-key"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def bucket_on(clock: FakeClock, state_dir: Path, key: str = KEY, **limits) -> SharedLeakyBucket:
    return SharedLeakyBucket(state_dir, key, clock=clock.time, sleep=clock.sleep, **limits)


def rejections(arrivals: list[float], burst: int, per_second: float) -> int:
    """How many calls GoDataFeed's bucket would answer 429, arrivals in any order."""
    level, last, rejected = 0.0, None, 0
    for at in sorted(arrivals):
        if last is not None:
            level = max(0.0, level - (at - last) * per_second)
        last = at
        if level + 1.0 > burst + 1e-9:
            rejected += 1
        else:
            level += 1.0
    return rejected


LIMITS = [
    pytest.param(50, 2.0, id="documented-50-at-2"),
    pytest.param(10, 20.0, id="10-at-20"),
    pytest.param(3, 0.5, id="3-at-0.5"),
]


@pytest.mark.parametrize(("burst", "per_second"), LIMITS)
def test_a_long_backlog_runs_at_least_95_percent_of_the_rate_without_a_429(
    tmp_path, burst, per_second
):
    clock = FakeClock()
    bucket = bucket_on(clock, tmp_path, burst=burst, per_second=per_second)
    start = clock.now

    sends = []
    for _ in range(800):
        bucket.acquire()
        sends.append(clock.now)

    assert sends[: burst - 1] == [start] * (burst - 1)
    steady_rate = (len(sends) - burst) / (sends[-1] - sends[burst - 1])
    assert 0.95 * per_second <= steady_rate <= per_second
    assert rejections(sends, burst, per_second) == 0


@pytest.mark.parametrize(("burst", "per_second"), LIMITS)
def test_network_jitter_below_one_call_never_causes_a_429(tmp_path, burst, per_second):
    clock = FakeClock()
    bucket = bucket_on(clock, tmp_path, burst=burst, per_second=per_second)
    jitter = random.Random(burst)
    arrivals = []

    for _ in range(800):
        bucket.acquire()
        # Each call reaches GoDataFeed after its own delay: calls can arrive bunched up.
        arrivals.append(clock.now + jitter.uniform(0.0, 0.9 / per_second))
        if jitter.random() < 0.05:
            clock.sleep(jitter.uniform(0.0, 5.0 / per_second))  # the backlog pauses now and then

    assert rejections(arrivals, burst, per_second) == 0


def test_a_burst_of_one_spaces_every_call(tmp_path):
    clock = FakeClock()
    bucket = bucket_on(clock, tmp_path, burst=1, per_second=4.0)

    waits = [bucket.acquire() for _ in range(5)]

    assert waits[0] == 0
    assert all(1 / 4.0 < wait < 1.05 / 4.0 for wait in waits[1:])


def test_buckets_with_the_same_key_share_one_state(tmp_path):
    clock = FakeClock()
    first = bucket_on(clock, tmp_path, burst=5, per_second=10.0)
    second = bucket_on(clock, tmp_path, burst=5, per_second=10.0)
    other_key = bucket_on(clock, tmp_path, key="another-key", burst=5, per_second=10.0)

    sends = []
    for _ in range(100):
        for bucket in (first, second):
            bucket.acquire()
            sends.append(clock.now)

    assert rejections(sends, 5, 10.0) == 0
    assert other_key.acquire() == 0  # another key is another bucket
    assert first.path == second.path != other_key.path


def test_the_state_file_never_holds_the_key(tmp_path):
    bucket = SharedLeakyBucket(tmp_path / "state", KEY)
    bucket.acquire()

    (state_file,) = (tmp_path / "state").iterdir()
    assert state_file == bucket.path
    assert KEY not in state_file.name
    assert KEY not in state_file.read_text()
    assert KEY not in repr(bucket)


def test_a_429_tops_the_shared_bucket_up(tmp_path):
    clock = FakeClock()
    bucket = bucket_on(clock, tmp_path, burst=10, per_second=10.0)
    bucket.acquire()

    bucket_on(clock, tmp_path, burst=10, per_second=10.0).mark_full()

    assert bucket.acquire() == pytest.approx(bucket.interval, abs=1e-6)


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param("", id="empty"),
        pytest.param("not a number\n", id="garbage"),
        pytest.param("nan\n", id="nan"),
        pytest.param("9e99\n", id="far-future"),
    ],
)
def test_a_damaged_state_file_or_clock_jump_costs_a_bounded_wait(tmp_path, stored):
    clock = FakeClock()
    bucket = bucket_on(clock, tmp_path, burst=5, per_second=10.0)
    bucket.path.write_text(stored)

    waited = bucket.acquire()

    assert 0 <= waited <= (bucket.capacity + MAX_WAITING_CALLS) * bucket.interval


def test_settings_out_of_range_are_refused(tmp_path):
    with pytest.raises(ValueError, match="GDF_RATE_LIMIT_BURST"):
        SharedLeakyBucket(tmp_path, KEY, burst=0)
    with pytest.raises(ValueError, match="GDF_RATE_LIMIT_PER_SECOND"):
        SharedLeakyBucket(tmp_path, KEY, per_second=0)
    with pytest.raises(ValueError, match="GDF_CONSUMER_KEY"):
        SharedLeakyBucket(tmp_path, "")


ACQUIRE_SNIPPET = """
import json, sys, time
from pathlib import Path
from gdf_pipeline.gdf.ratelimit import SharedLeakyBucket

bucket = SharedLeakyBucket(Path(sys.argv[1]), sys.argv[2], burst=5, per_second=20.0)
sends = []
for _ in range(20):
    bucket.acquire()
    sends.append(time.time())
print(json.dumps(sends))
"""


def test_two_processes_share_the_bucket_through_the_file(tmp_path):
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", ACQUIRE_SNIPPET, str(tmp_path), KEY],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0]
    sends = sorted(t for output in outputs for t in json.loads(output))

    assert rejections(sends, 5, 20.0) == 0
    # Sharing one bucket, the 40 calls need at least 35 intervals; two separate buckets
    # would have let each process finish its 20 in about half of that.
    interval = SharedLeakyBucket(tmp_path, KEY, burst=5, per_second=20.0).interval
    assert sends[-1] - sends[0] >= (len(sends) - 5) * interval * 0.99
