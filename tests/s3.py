"""A moto S3 server on loopback for tests (see `s3` in tests/conftest.py).

`reserve()` runs when tests/conftest.py is imported: it picks a free loopback port and puts the
S3 settings in os.environ (dummy keys, region, `AWS_ENDPOINT_URL`), so every process started
later (Ray workers, CLI subprocesses) talks to the test server and never to AWS. `start()` starts
the server (once) and makes the bucket; `S3Server.reset()` empties it.
"""
from __future__ import annotations

import os
import socket
import threading
import urllib.request
from dataclasses import dataclass

BUCKET = "biomine-test"
_lock = threading.Lock()
_server: S3Server | None = None


@dataclass
class S3Server:
    """A running moto server: its endpoint and the test bucket."""

    endpoint: str
    bucket: str
    handle: object

    def uri(self, key: str) -> str:
        """s3://BUCKET/key."""
        return f"s3://{self.bucket}/{key.strip('/')}"

    def reset(self) -> None:
        """Drop every bucket and object, then recreate the test bucket."""
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"))
        _make_bucket(self.bucket)


def reserve() -> None:
    """Choose the server's port and set the S3 environment (idempotent, before any server runs)."""
    if os.environ.get("BIOMINE_TEST_S3_PORT"):
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update({"BIOMINE_TEST_S3_PORT": str(port), "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                       "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})


def _make_bucket(bucket: str) -> None:
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"].split("://", 1)[1],
                           scheme="http", region="us-east-1", allow_bucket_creation=True)
    fs.create_dir(bucket)


def start() -> S3Server:
    """Start the server on the reserved port (once per process) with an empty test bucket."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    global _server
    with _lock:
        if _server is None:
            from moto.server import ThreadedMotoServer

            reserve()
            port = int(os.environ["BIOMINE_TEST_S3_PORT"])
            handle = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            handle.start()
            _server = S3Server(f"http://127.0.0.1:{port}", BUCKET, handle)
            _make_bucket(BUCKET)
        return _server


def stop() -> None:
    """Stop the server if this process started it."""
    global _server
    with _lock:
        if _server is not None:
            _server.handle.stop()
            _server = None
