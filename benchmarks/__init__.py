"""Runnable benchmarks; figures are recorded in benchmarks/README.md."""
