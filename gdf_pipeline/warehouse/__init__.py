"""The warehouse: one DuckDB file, its versioned migrations, and the one-writer lock."""

from gdf_pipeline.warehouse.migrate import migrate
from gdf_pipeline.warehouse.resource import Warehouse, WarehouseLockTimeout

__all__ = ["Warehouse", "WarehouseLockTimeout", "migrate"]
