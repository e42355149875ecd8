"""Thin entry points: the `biomine` CLI and benchmarks."""
