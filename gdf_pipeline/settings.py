"""Every setting the pipeline reads from the environment, with its default, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_API_URL = "https://api.godatafeed.com"
API_VERSIONS = ("v1", "v2")


class SettingsError(ValueError):
    """A setting has a value the pipeline cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    api_url: str = DEFAULT_API_URL
    api_version: str = "v1"
    consumer_key: str | None = None
    rate_limit_burst: int = 50
    rate_limit_per_second: float = 2.0
    data_dir: Path = Path("data")
    timezone: str = "UTC"
    order_number_prefix: str = "SO-"
    dagster_home: Path = Path("data/dagster_home")

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def analytics_copy_path(self) -> Path:
        """The read-only copy analysts open; its file name is also its DuckDB catalog name."""
        return self.data_dir / "analytics" / "analytics_copy.duckdb"

    @property
    def shipments_inbox(self) -> Path:
        return self.data_dir / "inbox" / "shipments"

    @property
    def state_dir(self) -> Path:
        """Small files shared by every process: the rate-limit bucket, the writer lock."""
        return self.data_dir / "state"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("GDF_DATA_DIR") or "data").expanduser().resolve()
        settings = cls(
            api_url=(env.get("GDF_API_URL") or DEFAULT_API_URL).rstrip("/"),
            api_version=(env.get("GDF_API_VERSION") or "v1").lower(),
            consumer_key=env.get("GDF_CONSUMER_KEY") or None,
            rate_limit_burst=_number(env, "GDF_RATE_LIMIT_BURST", 50, int),
            rate_limit_per_second=_number(env, "GDF_RATE_LIMIT_PER_SECOND", 2.0, float),
            data_dir=data_dir,
            timezone=env.get("GDF_TIMEZONE") or "UTC",
            order_number_prefix=env.get("GDF_ORDER_NUMBER_PREFIX", "SO-"),
            dagster_home=Path(env.get("DAGSTER_HOME") or data_dir / "dagster_home").resolve(),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.api_version not in API_VERSIONS:
            raise SettingsError(f"GDF_API_VERSION must be v1 or v2, not {self.api_version!r}")
        if self.rate_limit_burst < 1:
            raise SettingsError("GDF_RATE_LIMIT_BURST must be at least 1")
        if self.rate_limit_per_second <= 0:
            raise SettingsError("GDF_RATE_LIMIT_PER_SECOND must be above 0")
        if len(self.order_number_prefix) > 20:
            raise SettingsError("GDF_ORDER_NUMBER_PREFIX must be at most 20 characters")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise SettingsError(
                f"GDF_TIMEZONE {self.timezone!r} is not an IANA time zone name"
            ) from error


def _number(env, name: str, default, kind):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError as error:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from error
