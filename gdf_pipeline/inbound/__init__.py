"""Inbound: NEW orders from GoDataFeed into the OMS tables, then acknowledged with their number."""
