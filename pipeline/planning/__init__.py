"""Planning a run before anything starts: the index cache, which records to mine, preflight checks, the dry run."""
