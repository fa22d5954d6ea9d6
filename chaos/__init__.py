"""Fault injection for the pipeline: the proof that it loses nothing, duplicates nothing and
leaks nothing.

A `World` is one seller: a GoDataFeed emulator on loopback, a data folder, and the pipeline's
`sync` and `ship` jobs started as real processes, killed with SIGKILL at named crash points or
at random moments and run again until clean. `invariants.check` compares what GoDataFeed holds
with what the OMS holds after every sequence; `secrets.scan` reads every file the pipeline
wrote for the token and the consumer key. `make test` runs a short version
(gdf_pipeline_tests/test_reliability.py); `make chaos` runs the long one and prints its figures
(`python -m chaos --help`).
"""
