"""A local GoDataFeed Order API for tests, demos and benchmarks.

It follows the project's API contract to the letter (v1 and v2, tokens, the leaky-bucket rate
limit, listing, acknowledgements and status updates) and adds seeded, reproducible faults:
transient errors, dropped connections, latency, expiring tokens, imports while a client pages
and cancellations by the marketplace. Run it in-process with `Emulator`, or from the shell with
`python -m gdf_pipeline.emulator --help`.
"""

from .server import Emulator
from .store import REMOVE, Faults, Stats

__all__ = ["REMOVE", "Emulator", "Faults", "Stats"]
