"""The storage layer: output and state locations (local, s3://, gs://) opened once (location.py),
with atomic writes and a conditional create for commit records (exclusive.py)."""
from pipeline.storage.location import ENV_VARS, Location, StorageError, env_vars, storage_env

__all__ = ["ENV_VARS", "Location", "StorageError", "env_vars", "storage_env"]
