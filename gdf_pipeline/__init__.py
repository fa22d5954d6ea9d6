"""gdf-pipeline: GoDataFeed marketplace orders into a seller's OMS, and shipments back."""
