"""Partitioned `STATE/current` for `biomine update`: PMID-range buckets, tombstones, atomic commits."""
