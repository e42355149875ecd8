"""Curation datasets: exports (PubTator, BioC, JSON lines, TSV), the relation graph, the run report."""
