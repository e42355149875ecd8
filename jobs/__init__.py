"""Thin entry points: the `biomine` CLI commands."""
