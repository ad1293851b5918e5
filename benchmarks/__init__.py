"""Benchmarks: load generators and scenarios that print figures and write `benchmarks/results/`."""
