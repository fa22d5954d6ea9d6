"""Dagster resources for the two systems the pipeline reaches: GoDataFeed and the warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from gdf_pipeline.gdf.client import GoDataFeedClient
from gdf_pipeline.gdf.ratelimit import SharedLeakyBucket
from gdf_pipeline.settings import Settings
from gdf_pipeline.warehouse import Warehouse


class GoDataFeedResource(ConfigurableResource):
    """The GoDataFeed Order API, through one client per step with the shared rate limiter."""

    api_url: str = Field(description="Base URL; a local emulator in tests and the demo.")
    api_version: str = Field(default="v1", description="v1 (token in path) or v2 (Bearer).")
    consumer_key: str = Field(description="The store's consumer key; set GDF_CONSUMER_KEY.")
    rate_limit_burst: int = Field(default=50, description="Client bucket capacity in calls.")
    rate_limit_per_second: float = Field(default=2.0, description="Client bucket drain rate.")
    state_dir: str = Field(description="Folder for the rate-limit state shared by processes.")
    page_size: int = Field(default=250, description="Orders per listing page (1 to 250).")

    @contextmanager
    def get_client(self) -> Iterator[GoDataFeedClient]:
        """Yields a GoDataFeedClient; its stats count this step's calls, retries and 429s."""
        bucket = SharedLeakyBucket(
            state_dir=self.state_dir,
            consumer_key=self.consumer_key,
            burst=self.rate_limit_burst,
            per_second=self.rate_limit_per_second,
        )
        client = GoDataFeedClient(
            self.api_url,
            self.consumer_key,
            api_version=self.api_version,
            rate_limiter=bucket,
            page_size=self.page_size,
        )
        try:
            yield client
        finally:
            client.close()


def build_resources(settings: Settings | None = None) -> dict:
    """The resources every job uses, built from the environment's settings."""
    settings = settings or Settings.from_env()
    return {
        "gdf": GoDataFeedResource(
            api_url=settings.api_url,
            api_version=settings.api_version,
            # Read at run time through EnvVar, so the key never lands in the run's config.
            consumer_key=EnvVar("GDF_CONSUMER_KEY"),
            rate_limit_burst=settings.rate_limit_burst,
            rate_limit_per_second=settings.rate_limit_per_second,
            state_dir=str(settings.state_dir),
        ),
        "warehouse": Warehouse(
            database=str(settings.warehouse_path),
            analytics_copy_path=str(settings.analytics_copy_path),
            # DuckDB takes 80 % of RAM by default; the pipeline spills to disk instead, so a
            # large shipment file or a large load leaves room for everything else.
            connection_config={"memory_limit": "1GB"},
            order_number_prefix=settings.order_number_prefix,
        ),
    }
