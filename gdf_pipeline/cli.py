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

    emulator = commands.add_parser("emulator", help="serve a local GoDataFeed emulator")
    from gdf_pipeline.emulator import cli as emulator_cli

    emulator_cli.add_arguments(emulator)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if args.command == "emulator":
            return emulator_cli.run(args)
        if args.command == "sync":
            return sync()
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


if __name__ == "__main__":
    sys.exit(main())
