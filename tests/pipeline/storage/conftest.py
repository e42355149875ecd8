"""The storage tests' fixture: every test runs on a local folder and on the loopback S3 server."""
from __future__ import annotations

import time

import pytest

from pipeline.storage import Location


@pytest.fixture(params=["local", "s3"])
def loc(request, tmp_path):  # noqa: ANN001, ANN201
    """A fresh location: a local folder, or a new key prefix in the test bucket."""
    if request.param == "local":
        return Location.open(str(tmp_path / "out"))
    server = request.getfixturevalue("s3")
    name = request.node.name.replace("[", "-").rstrip("]")
    return Location.open(server.uri(f"{request.module.__name__.rsplit('.', 1)[-1]}/{name}-{time.time_ns()}"))
