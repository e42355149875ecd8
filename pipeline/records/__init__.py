"""What a run records: manifest, accounting, progress, engine counters, failure explanations."""
