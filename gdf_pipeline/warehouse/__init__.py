"""The warehouse: one DuckDB file, its versioned migrations, and the one-writer lock."""

from gdf_pipeline.warehouse.resource import Warehouse, WarehouseLockTimeout
from gdf_pipeline.warehouse.migrate import migrate

__all__ = ["Warehouse", "WarehouseLockTimeout", "migrate"]
