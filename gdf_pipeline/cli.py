"""The `gdf-pipeline` command: sync, ship, demo, and the local GoDataFeed emulator."""

from __future__ import annotations

import argparse
import logging
import sys

from gdf_pipeline.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    """Parses the command line and runs one subcommand; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="gdf-pipeline", description="GoDataFeed orders into your OMS, shipments back."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("sync", help="pull, load and acknowledge NEW orders once")
    commands.add_parser("demo", help="the whole pipeline against a local emulator")
    status = commands.add_parser("status", help="runs, backlog, stuck items, API use today")
    status.add_argument("--json", action="store_true", help="print JSON for scripts")

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
