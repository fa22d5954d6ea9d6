"""The `gdf-pipeline` command: sync, ship, demo, and the local GoDataFeed emulator."""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from pathlib import Path

from gdf_pipeline.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    """Parses the command line and runs one subcommand; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="gdf-pipeline", description="GoDataFeed orders into your OMS, shipments back."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("sync", help="pull, load and acknowledge NEW orders once")
    commands.add_parser("ship", help="post the shipment files and oms.shipments rows once")
    commands.add_parser("demo", help="the whole pipeline against a local emulator")
    status = commands.add_parser("status", help="runs, backlog, stuck items, API use today")
    status.add_argument("--json", action="store_true", help="print JSON for scripts")

    replay = commands.add_parser("replay", help="load quarantined orders again, corrected")
    replay_how = replay.add_subparsers(dest="replay", required=True)
    export = replay_how.add_parser("export", help="write quarantined orders to JSON files")
    export.add_argument("folder", type=Path)
    corrected = replay_how.add_parser("orders", help="load corrected order files, then sync")
    corrected.add_argument("files", type=Path, nargs="+")
    replay_how.add_parser("refetch", help="fetch quarantined orders from GoDataFeed, then sync")

    emulator = commands.add_parser("emulator", help="serve a local GoDataFeed emulator")
    from gdf_pipeline.emulator import cli as emulator_cli

    emulator_cli.add_arguments(emulator)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("gdf_pipeline").setLevel(logging.INFO)
    if args.command != "emulator":
        # The in-process emulator of the demo would otherwise log every request.
        logging.getLogger("gdf_pipeline.emulator").setLevel(logging.WARNING)
    try:
        if args.command == "emulator":
            return emulator_cli.run(args)
        if args.command == "sync":
            return sync()
        if args.command == "ship":
            return ship()
        if args.command == "replay":
            return replay_orders(args)
        if args.command == "status":
            return status_report(as_json=args.json)
        if args.command == "demo":
            from gdf_pipeline.demo import run_demo

            return run_demo()
    except SettingsError as error:
        print(f"gdf-pipeline: {error}", file=sys.stderr)
        return 2
    return 2


def sync() -> int:
    """One inbound cycle as a Dagster run; prints the summary; 1 when the run failed."""
    from gdf_pipeline.runs import format_sync_summary, run_job

    settings = Settings.from_env()
    if not settings.consumer_key:
        raise SettingsError("GDF_CONSUMER_KEY is not set; create a consumer key in GoDataFeed")
    summary = run_job("sync_orders_job", settings)
    print(format_sync_summary(summary))
    return 0 if summary.success else 1


def ship() -> int:
    """One outbound pass as a Dagster run; prints the summary; 1 when the run failed."""
    from gdf_pipeline.runs import SHIP_RUN_CONFIG, format_ship_summary, run_job

    settings = Settings.from_env()
    if not settings.consumer_key:
        raise SettingsError("GDF_CONSUMER_KEY is not set; create a consumer key in GoDataFeed")
    summary = run_job("post_status_updates_job", settings, SHIP_RUN_CONFIG)
    print(format_ship_summary(summary))
    return 0 if summary.success else 1


def replay_orders(args: argparse.Namespace) -> int:
    """Exports quarantined orders, or stages corrected or refetched ones and syncs them."""
    from gdf_pipeline.inbound import replay
    from gdf_pipeline.resources import build_resources

    settings = Settings.from_env()
    resources = build_resources(settings)
    warehouse = resources["warehouse"]
    if args.replay == "export":
        with warehouse.get_connection() as conn:
            written = replay.export_quarantine(conn, args.folder)
        print(f"Wrote {len(written)} quarantined orders to {args.folder}; each file has the")
        print("reason beside the order. Correct the order, then: gdf-pipeline replay orders FILE")
        return 0

    if args.replay == "orders":
        try:
            orders = replay.read_corrected_orders(args.files)
        except replay.ReplayError as error:
            print(f"gdf-pipeline: {error}", file=sys.stderr)
            return 1
        failures = []
    else:
        if not settings.consumer_key:
            raise SettingsError("GDF_CONSUMER_KEY is not set")
        with warehouse.get_connection() as conn:
            quarantined = replay.unresolved_quarantine(conn)
        from gdf_pipeline.gdf.client import GoDataFeedClient

        with GoDataFeedClient.from_settings(settings) as client:
            orders, failures = replay.refetch_quarantined(client, quarantined)
    for failure in failures:
        print(f"not replayed: {failure}", file=sys.stderr)

    with warehouse.get_connection() as conn:
        staged = replay.stage_replay(conn, orders, f"replay-{uuid.uuid4()}")
    print(f"Staged {staged} orders for replay; syncing")
    return sync()


def status_report(as_json: bool) -> int:
    """Prints the status report; 1 when there is no warehouse yet."""
    from gdf_pipeline.analytics.status import collect_status, format_status, to_json
    from gdf_pipeline.instance import prepare_instance

    settings = Settings.from_env()
    try:
        report = collect_status(settings, prepare_instance(settings))
    except FileNotFoundError as error:
        print(f"gdf-pipeline: {error}", file=sys.stderr)
        return 1
    print(to_json(report) if as_json else format_status(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
