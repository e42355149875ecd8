"""One storage layer: an output or state location (local folder, `s3://`, `gs://`) opened once.

`Location.open(uri)` resolves the URI to a pyarrow filesystem and a base path a single time;
`child()` shares that filesystem. A Location pickles as its URI, so a Ray worker re-opens it with
its own environment (credentials and endpoint come from the URI's query or the variables
`env_vars()` lists; a pickled S3 filesystem would carry no keys anyway).

Writes never publish a partial file: every `write_*` and `open_output` writes a temporary name
(`<name>.<random>.tmp`, which readers skip) and renames it on success only. On an object store the
rename is a server-side copy, so the final key appears whole or not at all; on an exception the
temporary object is deleted (pyarrow *closes*, i.e. completes, an S3 upload on exception, so
the data must never be written under the final key), and a writer killed mid-upload leaves at
most an unfinished multipart upload or a `.tmp` object. `create_exclusive` is the one
conditional write: `O_EXCL`-style locally, `If-None-Match: *` on S3 (needs boto3).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

log = logging.getLogger(__name__)

ENV_VARS = {  # scheme -> environment variables its clients read (passed to Ray workers)
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
           "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE",
           "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED",
           "AWS_CA_BUNDLE"),
    "gs": ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "STORAGE_EMULATOR_HOST"),
}
TMP_SUFFIX = ".tmp"


class StorageError(ValueError):
    """A location cannot be opened (bad URI or options); the message names the URI."""


def env_vars(uri: str) -> tuple[str, ...]:
    """Names of the environment variables a location's filesystem client reads."""
    scheme = urlsplit(uri).scheme if "://" in uri else "file"
    return ENV_VARS.get("gs" if scheme == "gcs" else scheme, ())


def storage_env(uris: list[str]) -> dict[str, str]:
    """The variables (set here) that these locations need on every node: for a runtime_env."""
    names = {n for uri in uris if uri for n in env_vars(uri)}
    return {n: os.environ[n] for n in sorted(names) if n in os.environ}


@dataclass(frozen=True)
class Location:
    """A folder on a pyarrow filesystem: `fs` and `base` resolved once from `uri`."""

    uri: str  # as given (absolute path for local folders), with any ?query options
    fs: pafs.FileSystem = field(compare=False, repr=False)
    base: str = field(compare=False, repr=False)

    @classmethod
    def open(cls, uri: str | os.PathLike | Location) -> Location:
        """Resolve a local path, file://, s3:// or gs:// URI (endpoint options from its query or env)."""
        if isinstance(uri, Location):
            return uri
        uri = str(uri)
        if "://" not in uri:
            uri = os.path.abspath(uri)
        try:
            fs, base = pafs.FileSystem.from_uri(uri)
        except (pa.ArrowInvalid, OSError) as exc:
            raise StorageError(f"cannot open {uri}: {exc}") from exc
        return cls(uri, fs, base.rstrip("/") or base)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return Location.open, (self.uri,)

    # --- names ---------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        """'file', 's3', 'gs', ..."""
        return urlsplit(self.uri).scheme if "://" in self.uri else "file"

    @property
    def is_local(self) -> bool:
        """Whether this is a folder on the local filesystem."""
        return isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, rel: str = "") -> str:
        """The filesystem path of a location-relative path ('' = the base)."""
        rel = rel.strip("/")
        return f"{self.base}/{rel}" if rel else self.base

    def child(self, rel: str) -> Location:
        """The location of a sub-folder (same filesystem, no new resolution)."""
        rel = rel.strip("/")
        if not rel:
            return self
        parts = urlsplit(self.uri) if "://" in self.uri else None
        if parts is None:
            uri = f"{self.uri.rstrip('/')}/{rel}"
        else:
            uri = parts._replace(path=f"{parts.path.rstrip('/')}/{rel}").geturl()
        return Location(uri, self.fs, self.path(rel))

    def url(self, rel: str = "") -> str:
        """The full name of a path for messages: scheme kept, query (options) dropped."""
        if self.is_local:
            return self.path(rel)
        parts = urlsplit(self.uri)
        return f"{parts.scheme}://{self.path(rel)}"

    def __str__(self) -> str:
        return self.url()

    def options(self) -> dict[str, str]:
        """The URI's query options (endpoint_override, scheme, region, ...)."""
        return dict(parse_qsl(urlsplit(self.uri).query)) if "://" in self.uri else {}

    # --- looking ---------------------------------------------------------------------------
    def info(self, rel: str = "") -> pafs.FileInfo:
        """The FileInfo of a path."""
        return self.fs.get_file_info(self.path(rel))

    def exists(self, rel: str = "") -> bool:
        """Whether a file or folder exists (an S3 prefix with objects counts as a folder)."""
        return self.info(rel).type != pafs.FileType.NotFound

    def is_file(self, rel: str) -> bool:
        """Whether a file exists at rel."""
        return self.info(rel).type == pafs.FileType.File

    def is_dir(self, rel: str = "") -> bool:
        """Whether a folder exists at rel."""
        return self.info(rel).type == pafs.FileType.Directory

    def list(self, rel: str = "", recursive: bool = False) -> list[pafs.FileInfo]:
        """Entries under a folder (none if it is absent), sorted by path."""
        selector = pafs.FileSelector(self.path(rel), allow_not_found=True, recursive=recursive)
        return sorted(self.fs.get_file_info(selector), key=lambda i: i.path)

    def files(self, rel: str = "", suffix: str = "") -> list[str]:
        """Filesystem paths of the files in a folder ending in suffix (temporaries skipped)."""
        return [i.path for i in self.list(rel) if i.type == pafs.FileType.File
                and i.base_name.endswith(suffix) and not i.base_name.endswith(TMP_SUFFIX)]

    # --- reading --------------------------------------------------------------------------
    def open_input(self, rel: str) -> IO[bytes]:
        """A readable stream (use as a context manager)."""
        try:
            return self.fs.open_input_stream(self.path(rel), compression=None)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"not found: {self.url(rel)}") from exc

    def read_bytes(self, rel: str) -> bytes:
        """A whole file's bytes."""
        with self.open_input(rel) as f:
            return f.read()

    def read_text(self, rel: str) -> str:
        """A whole file as UTF-8 text."""
        return self.read_bytes(rel).decode("utf-8")

    def read_json(self, rel: str) -> Any:
        """A JSON file, parsed."""
        return json.loads(self.read_bytes(rel))

    # --- writing --------------------------------------------------------------------------
    def makedirs(self, rel: str = "") -> None:
        """Create a folder and its parents (object stores: nothing needed, markers at most)."""
        if self.is_local or self.scheme not in ("s3", "gs", "gcs"):
            self.fs.create_dir(self.path(rel), recursive=True)

    def temp_path(self, rel: str) -> str:
        """A fresh temporary name next to rel (readers and listings skip `*.tmp`)."""
        return f"{self.path(rel)}.{uuid.uuid4().hex[:10]}{TMP_SUFFIX}"

    def publish(self, tmp: str, rel: str) -> None:
        """Rename a finished temporary file to rel (atomic locally; a server-side copy on S3)."""
        self.fs.move(tmp, self.path(rel))

    def discard(self, path: str) -> None:
        """Delete a (temporary) file if it exists, quietly."""
        with contextlib.suppress(OSError):
            if self.fs.get_file_info(path).type == pafs.FileType.File:
                self.fs.delete_file(path)

    @contextlib.contextmanager
    def open_output(self, rel: str) -> Iterator[IO[bytes]]:
        """A writable stream whose file appears at rel only if the block ends without an exception."""
        self.makedirs(rel.rsplit("/", 1)[0] if "/" in rel.strip("/") else "")
        tmp = self.temp_path(rel)
        try:
            with self.fs.open_output_stream(tmp, compression=None) as out:
                yield out
        except BaseException:
            self.discard(tmp)  # closed (= completed on S3) under its temporary name: drop it
            raise
        try:
            self.publish(tmp, rel)
        except BaseException:
            self.discard(tmp)
            raise

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a whole file atomically."""
        with self.open_output(rel) as out:
            out.write(data)

    def write_text(self, rel: str, text: str) -> None:
        """Write a UTF-8 text file atomically."""
        self.write_bytes(rel, text.encode("utf-8"))

    def write_json(self, rel: str, obj: Any) -> None:
        """Write a JSON document atomically (indented, keys sorted)."""
        self.write_text(rel, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")

    def write_table(self, rel: str, table: pa.Table, **options: Any) -> None:
        """Write a zstd Parquet file atomically."""
        import pyarrow.parquet as pq

        options.setdefault("compression", "zstd")
        with self.open_output(rel) as out:
            pq.write_table(table, out, **options)

    def delete(self, rel: str) -> None:
        """Delete a file if present."""
        self.discard(self.path(rel))

    def delete_dir(self, rel: str) -> None:
        """Delete a folder and everything under it, if present."""
        if self.exists(rel):
            self.fs.delete_dir(self.path(rel))

    def upload(self, local_dir: str, rel: str = "", skip: tuple[str, ...] = ()) -> int:
        """Copy a local folder's files under rel, each written atomically (names under a
        top-level entry in `skip` left out); returns the number of files."""
        n = 0
        for root, dirs, names in os.walk(local_dir):
            here = os.path.relpath(root, local_dir)
            dirs[:] = sorted(d for d in dirs if not (here == "." and d in skip))
            for name in sorted(names):
                if here == "." and name in skip:
                    continue
                sub = name if here == "." else f"{here}/{name}"
                with open(os.path.join(root, name), "rb") as src, \
                        self.open_output(f"{rel}/{sub}" if rel else sub) as out:
                    while chunk := src.read(8 << 20):
                        out.write(chunk)
                n += 1
        return n

    def work_dir(self) -> str:
        """A local folder for work that needs a real filesystem (model training): the folder
        itself when local, else a per-URI folder in the temp dir (kept, so a rerun resumes)."""
        if self.is_local:
            return self.base
        import hashlib
        import tempfile

        key = hashlib.sha1(self.url().encode()).hexdigest()[:16]
        return os.path.join(tempfile.gettempdir(), "biomine-work", key)

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        """Create rel with data only if it does not exist; False if it did (someone else won)."""
        from pipeline.storage.exclusive import create_exclusive

        return create_exclusive(self, rel, data)
