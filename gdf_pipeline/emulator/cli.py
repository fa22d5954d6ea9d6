"""Command line of the emulator: `gdf-pipeline emulator ...` or `python -m gdf_pipeline.emulator`.

On start it prints `GDF_CONSUMER_KEY=<key>` and `GDF_API_URL=<url>` on stdout, one line each,
so a script can read them (or `eval` them into its environment), then serves until SIGINT or
SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from gdf_pipeline.gdf import contract

from .server import Emulator
from .store import RETRY_AFTER_MODES, Faults


def _lifespan(text: str) -> int | None:
    if text.lower() in ("never", "none", "0"):
        return None
    if text in ("7", "14", "30"):
        return int(text)
    raise argparse.ArgumentTypeError("must be never, 7, 14 or 30")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the emulator's options to `parser`."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    parser.add_argument("--orders", type=int, default=0, help="NEW orders to generate")
    parser.add_argument("--seed", type=int, default=0, help="seed of orders, tokens and faults")
    parser.add_argument("--consumer-key", help="accepted consumer key; derived from the seed")
    parser.add_argument(
        "--rate-burst",
        type=int,
        default=contract.RATE_LIMIT_BURST,
        help="leaky bucket capacity in calls; 0 turns the rate limit off",
    )
    parser.add_argument(
        "--rate-per-second",
        type=float,
        default=contract.RATE_LIMIT_PER_SECOND,
        help="calls the bucket drains per second",
    )
    parser.add_argument(
        "--token-lifespan-days",
        type=_lifespan,
        default=None,
        help="never (default), 7, 14 or 30",
    )
    faults = parser.add_argument_group("faults (all off by default, reproducible with --seed)")
    faults.add_argument(
        "--transient-rate", type=float, default=0.0, help="fraction of calls answered 5xx"
    )
    faults.add_argument(
        "--drop-rate", type=float, default=0.0, help="fraction of calls dropped unanswered"
    )
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    faults.add_argument(
        "--token-expiry-calls",
        type=int,
        default=0,
        help="tokens expire after this many calls made with them",
    )
    faults.add_argument(
        "--retry-after",
        choices=RETRY_AFTER_MODES,
        default="absent",
        help="Retry-After header on 429 and 503 answers",
    )
    faults.add_argument(
        "--import-during-paging",
        type=int,
        default=0,
        metavar="K",
        help="import K new orders before answering a list call for page 2 or later",
    )
    faults.add_argument(
        "--upstream-cancel-rate",
        type=float,
        default=0.0,
        help="fraction of list calls after which the marketplace cancels an open order",
    )
    parser.add_argument(
        "--log-requests",
        action="store_true",
        help="log each request line to stderr (tokens and keys masked)",
    )


def run(args: argparse.Namespace) -> int:
    """Starts the emulator from parsed options and serves until SIGINT or SIGTERM."""
    try:
        emulator = Emulator(
            orders=args.orders,
            seed=args.seed,
            rate_burst=args.rate_burst,
            rate_per_second=args.rate_per_second,
            token_lifespan_days=args.token_lifespan_days,
            consumer_key=args.consumer_key,
            faults=Faults(
                transient_rate=args.transient_rate,
                drop_rate=args.drop_rate,
                latency=args.latency,
                token_expiry_calls=args.token_expiry_calls,
                retry_after=args.retry_after,
                import_during_paging=args.import_during_paging,
                upstream_cancel_rate=args.upstream_cancel_rate,
            ),
        )
    except ValueError as error:
        print(f"emulator: {error}", file=sys.stderr)
        return 2
    if args.log_requests:
        # A no-op when the caller has configured logging already.
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
        logging.getLogger(__package__).setLevel(logging.INFO)

    try:
        emulator.start(args.host, args.port)
    except OSError as error:
        print(
            f"emulator: cannot listen on {args.host}:{args.port} ({error.strerror}); "
            "choose another --port, or 0 for a free one",
            file=sys.stderr,
        )
        return 1

    stopping = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
    print(f"GDF_CONSUMER_KEY={emulator.consumer_key}", flush=True)
    print(f"GDF_API_URL={emulator.url}", flush=True)
    print(
        f"GoDataFeed emulator serving {args.orders} orders at {emulator.url}; Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    try:
        # A timed wait, so that signal handlers get to run promptly.
        while not stopping.wait(0.2):
            pass
    finally:
        emulator.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gdf_pipeline.emulator",
        description="A local GoDataFeed Order API for tests, demos and benchmarks.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
