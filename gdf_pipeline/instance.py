"""The Dagster instance the command line runs jobs in: DAGSTER_HOME, with the shipped settings."""

from __future__ import annotations

import os
import shutil
from importlib import resources

from dagster import DagsterInstance

from gdf_pipeline.settings import Settings


def prepare_instance(settings: Settings) -> DagsterInstance:
    """Creates DAGSTER_HOME with the shipped dagster.yaml when missing; returns its instance."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        with resources.as_file(resources.files("gdf_pipeline") / "dagster.yaml") as shipped:
            shutil.copyfile(shipped, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return DagsterInstance.get()
