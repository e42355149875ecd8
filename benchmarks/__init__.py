"""Benchmarks: each module is run as `python -m benchmarks.<name>` and writes JSON under benchmarks/results/."""
