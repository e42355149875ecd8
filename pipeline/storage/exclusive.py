"""Conditional create ("put if absent") for commit records: the one write that must not race.

- local folders: the data goes to a temporary file that is then hard-linked to the final name;
  `link` fails if the name exists, atomically, and a reader never sees a half-written record;
- `s3://`: PutObject with `If-None-Match: *` through boto3 (pyarrow has no conditional write);
  a 412 (exists) or 409 (a concurrent conditional write) means someone else won;
- anywhere else, or without boto3: check, then write. Two writers inside the same few
  milliseconds can both "win" there; a warning says so once.
"""
from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)
_warned: set[str] = set()


def create_exclusive(loc: Any, rel: str, data: bytes) -> bool:
    """Create loc/rel (loc: a pipeline.storage.Location) holding data unless it exists; True if created."""
    if loc.is_local:
        return _create_local(loc.path(rel), data)
    if loc.scheme == "s3":
        client = _s3_client(loc)
        if client is not None:
            return _create_s3(client, loc.path(rel), data)
    if loc.scheme not in _warned:
        _warned.add(loc.scheme)
        log.warning("%s: no conditional write available (s3 needs boto3); commit records use "
                    "check-then-write, so two writers racing within milliseconds could both commit",
                    loc.url())
    if loc.exists(rel):
        return False
    loc.write_bytes(rel, data)
    return True


def _create_local(path: str, data: bytes) -> bool:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}-{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic: fails with FileExistsError when the name is taken
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def _s3_client(loc: Any) -> Any:
    """A boto3 S3 client for the location's endpoint (None without boto3)."""
    try:
        import boto3
    except ImportError:
        return None
    opts = loc.options()
    endpoint = None
    if opts.get("endpoint_override"):
        endpoint = f"{opts.get('scheme', 'https')}://{opts['endpoint_override']}"
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = opts.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    user = _user_keys(loc.uri)
    return boto3.client("s3", endpoint_url=endpoint, region_name=region, **user)


def _user_keys(uri: str) -> dict[str, str]:
    """Access keys written in the URI (s3://KEY:SECRET@bucket/...), as pyarrow accepts them."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    if parts.username and parts.password:
        return {"aws_access_key_id": unquote(parts.username),
                "aws_secret_access_key": unquote(parts.password)}
    return {}


def _create_s3(client: Any, path: str, data: bytes) -> bool:
    from botocore.exceptions import ClientError

    bucket, _, key = path.partition("/")
    try:
        client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = exc.response.get("Error", {}).get("Code")
        if status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict"):
            return False
        raise
    return True
