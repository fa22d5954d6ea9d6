"""Benchmarks: commands that print figures, never tests. `make bench` runs the quick mode."""
