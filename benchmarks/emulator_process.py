"""`python -m benchmarks.emulator_process ORDERS SEED`: a warmed-up emulator in its own process.

The emulator encodes an order's JSON the first time a listing returns it and keeps the text.
This process lists every page once before it reports ready, so every contender then reads the
same pages at the same cost, and its work runs on its own CPU. It prints one JSON line with
the URL and consumer key, and serves until its standard input closes.
"""

from __future__ import annotations

import json
import sys

import requests

from gdf_pipeline.emulator import Emulator

PAGE_SIZE = 250


def main(argv: list[str]) -> int:
    orders, seed = int(argv[0]), int(argv[1])
    with Emulator(orders=orders, seed=seed, rate_burst=0) as emulator:
        _warm_up(emulator, orders)
        sys.stdout.write(
            json.dumps({"url": emulator.url, "consumer_key": emulator.consumer_key}) + "\n"
        )
        sys.stdout.flush()
        sys.stdin.read()
    return 0


def _warm_up(emulator: Emulator, orders: int) -> None:
    session = requests.Session()
    token = session.get(
        f"{emulator.url}/v1/authorization", params={"consumerKey": emulator.consumer_key}
    ).json()["token"]
    for page in range(1, -(-orders // PAGE_SIZE) + 1):
        session.get(
            f"{emulator.url}/v1/{token}/orders",
            params={"status": "NEW", "page": page, "pageSize": PAGE_SIZE},
        ).raise_for_status()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
