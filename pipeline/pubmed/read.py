"""Find PubMed XML inputs in NLM order and read them as a Ray Dataset (one read task per file)."""
from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from pipeline.pubmed.schema import RECORD_SCHEMA, file_seq_of

Handler = Callable[..., list[dict[str, Any]]]

if TYPE_CHECKING:
    import pyarrow
    import pyarrow.fs
    import ray.data

XML_SUFFIXES = (".xml", ".xml.gz")
RECORD_TYPES = {"articles": "article", "deletions": "deletion", "errors": "error"}


def nlm_order_key(path: str) -> tuple[int, int, str]:
    """Sort key: NLM file number (pubmed26n0001 ... n1334, then updates n1335 ...), then name;
    files without a number go last."""
    name = os.path.basename(path)
    seq = file_seq_of(name)
    return (0, seq, name) if seq is not None else (1, 0, name)


def is_uri(path: str) -> bool:
    """True for `scheme://...` inputs (s3://, gs://, file://, ...), read through pyarrow.fs."""
    return "://" in path


def _list_xml(fs: pyarrow.fs.FileSystem, folder: str) -> list[pyarrow.fs.FileInfo]:
    """The *.xml / *.xml.gz files directly inside `folder` of `fs`."""
    import pyarrow.fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return [i for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(XML_SUFFIXES)]


def _resolve(uri: str) -> tuple[Any, str]:
    """(filesystem, path) of a URI, through the one storage layer."""
    from pipeline.storage import Location

    loc = Location.open(uri)
    return loc.fs, loc.base


def _expand_uri(item: str, resolve: Callable[[str], tuple[Any, str]] | None = None) -> list[str]:
    """One URI (file, folder, or glob in the file name) -> its XML files as URIs.

    file:// URIs come back as plain local paths, so local-only readers work on them too.
    `resolve` (URI -> filesystem, path) defaults to opening a `Location` (the storage layer).
    """
    import pyarrow.fs as pafs

    resolve = resolve or _resolve
    scheme = item.split("://", 1)[0]
    if glob.has_magic(item):
        folder, pattern = item.rstrip("/").rsplit("/", 1)
        if glob.has_magic(folder):
            raise ValueError(f"{item!r}: in a URI only the file name may hold wildcards")
        fs, base = resolve(folder)
        infos = [i for i in _list_xml(fs, base) if fnmatch.fnmatchcase(i.base_name, pattern)]
        if not infos:
            raise FileNotFoundError(f"no *.xml or *.xml.gz files match {item!r}")
    else:
        fs, base = resolve(item)
        info = fs.get_file_info(base)
        if info.type == pafs.FileType.Directory:
            infos = _list_xml(fs, base)
            if not infos:
                raise FileNotFoundError(f"no *.xml or *.xml.gz files in directory {item!r}")
        elif info.type == pafs.FileType.File:
            if not base.endswith(XML_SUFFIXES):
                raise ValueError(f"{item!r} is not a PubMed XML file (expected .xml or .xml.gz)")
            infos = [info]
        else:
            raise FileNotFoundError(f"input path does not exist: {item!r}")
    if isinstance(fs, pafs.LocalFileSystem):
        return [i.path for i in infos]
    return [f"{scheme}://{i.path}" for i in infos]


def open_input(path: str) -> IO[bytes]:
    """A local path or URI opened as a binary stream, gunzipped when it starts with gzip magic."""
    from pipeline.pubmed.xml import open_xml

    return open_xml(path)


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """Files, globs and directories -> *.xml / *.xml.gz paths in NLM order (duplicates dropped).

    Local paths come back absolute; `s3://`, `gs://` (any pyarrow filesystem URI) are listed
    through pyarrow.fs and come back as URIs (`file://` ones as local paths). A path that does
    not exist (or a glob/directory matching no XML file) raises FileNotFoundError naming it,
    before any work starts.
    """
    if isinstance(inputs, str):
        inputs = [inputs]
    found: dict[str, None] = {}
    for item in inputs:
        if is_uri(item):
            matches = _expand_uri(item)
        elif os.path.isdir(item):
            matches = [os.path.join(item, n) for n in os.listdir(item)]
            matches = [m for m in matches if os.path.isfile(m) and m.endswith(XML_SUFFIXES)]
            if not matches:
                raise FileNotFoundError(f"no *.xml or *.xml.gz files in directory {item!r}")
        elif glob.has_magic(item):
            matches = [m for m in glob.glob(item) if os.path.isfile(m) and m.endswith(XML_SUFFIXES)]
            if not matches:
                raise FileNotFoundError(f"no *.xml or *.xml.gz files match {item!r}")
        elif os.path.isfile(item):
            if not item.endswith(XML_SUFFIXES):
                raise ValueError(f"{item!r} is not a PubMed XML file (expected .xml or .xml.gz)")
            matches = [item]
        else:
            raise FileNotFoundError(f"input path does not exist: {item!r}")
        for m in matches:
            found[m if is_uri(m) else os.path.abspath(m)] = None
    return sorted(found, key=nlm_order_key)


def input_filesystem(paths: Sequence[str]) -> pyarrow.fs.FileSystem | None:
    """The one pyarrow filesystem of object-store paths (None for local ones); mixing is refused."""
    schemes = {p.split("://", 1)[0] if is_uri(p) else "" for p in paths}
    if len(schemes) > 1:
        raise ValueError(f"inputs mix filesystems ({sorted(s or 'local' for s in schemes)}); "
                         f"read them in separate runs or copy them to one place")
    if not paths or schemes == {""}:
        return None
    return _resolve(paths[0])[0]


def _datasource_class() -> type:
    """Build the FileBasedDatasource subclass lazily, so importing this module needs no Ray."""
    import pyarrow
    from ray.data.datasource import FileBasedDatasource

    from pipeline.pubmed.xml import decompressed, scan_records
    from pipeline.pubmed.schema import records_to_table

    class PubmedXmlDatasource(FileBasedDatasource):
        """Streams RECORD_SCHEMA blocks from PubMed XML files.

        Why a FileBasedDatasource and not read_binary_files + flat_map: binary reads put each
        whole file (~300 MB of XML for a baseline file) into the object store as one row
        before parsing, while `_read_stream` parses the open stream and yields ~batch_rows
        blocks as it goes, so memory stays flat. It is a DeveloperAPI (checked on Ray 2.60);
        its surface used here is `_read_stream` and `resolve_compression`.
        """

        def __init__(self, paths: list[str], *, kinds: tuple[str, ...], batch_rows: int,
                     columns: list[str] | None = None, keep: Mapping[str, Any] | None = None,
                     **kwargs: Any) -> None:
            schema = RECORD_SCHEMA if columns is None else pyarrow.schema(
                [RECORD_SCHEMA.field(c) for c in columns])
            super().__init__(paths, schema=schema, **kwargs)
            self._kinds = {RECORD_TYPES[k] for k in kinds}
            self._batch_rows = batch_rows
            self._columns = columns
            self._keep = keep  # file name -> object ref of its sorted keep positions

        def _table(self, batch: list[dict[str, Any]]) -> pyarrow.Table:
            table = records_to_table(batch)
            return table if self._columns is None else table.select(self._columns)

        def _handler(self, path: str) -> Handler:
            """The per-record parser of `path`: every record, or only its keep positions
            (records not kept are skipped before any field is parsed)."""
            if self._keep is None:
                return full_rows
            import ray

            ref = self._keep.get(os.path.basename(path))
            return keep_positions_handler(ray.get(ref) if ref is not None else [])

        def resolve_compression(self, path: str, open_args: dict[str, Any]) -> str | None:
            """Hand the raw bytes over: gunzip happens in _read_stream with Python's gzip, so
            a bad file gives the same error row as the local reader."""
            return None

        def _read_stream(self, f: pyarrow.NativeFile, path: str) -> Iterator[pyarrow.Table]:
            stream = decompressed(f, path)  # by content, as the index and `biomine parse` do
            # entity warnings are the index's to report (an error row here would be a 2nd row
            # for the same record); so are XML errors (a broken record, a cut file) when reading
            # the index's keep-lists: a broken record is not in the index, nor in the run
            xml_errors = self._keep is None
            rows = (r for r in scan_records(stream, path, handler=self._handler(path), entity_errors=False)
                    if r["record_type"] in self._kinds and (xml_errors or r.get("stage") != "xml"))
            batch: list[dict[str, Any]] = []
            for rec in rows:
                batch.append(rec)
                if len(batch) >= self._batch_rows:
                    yield self._table(batch)
                    batch = []
            if batch:
                yield self._table(batch)

    return PubmedXmlDatasource


def full_rows(el: Any, source_file: str | None, file_seq: int | None, position: int) -> list[dict]:
    """Record handler of the full reader: an article dict, or deletion dicts."""
    from pipeline.pubmed.xml import parse_article, parse_deletions

    if el.tag == "DeleteCitation":
        return parse_deletions(el, source_file, file_seq, position)
    return [parse_article(el, source_file, file_seq, position)]


def keep_positions_handler(positions: Sequence[int] | np.ndarray) -> Handler:
    """A record handler that parses only the records at `positions` (record index in the file,
    as in the index) and skips every other one unparsed. Cost per record: one array lookup."""
    wanted = np.asarray(positions, dtype=np.int64)
    if wanted.size and wanted.min() < 0:
        raise ValueError(f"keep positions must be >= 0, got {int(wanted.min())}")
    mask = np.zeros(int(wanted.max()) + 1 if wanted.size else 0, dtype=bool)
    mask[wanted] = True
    size = len(mask)

    def handler(el: Any, source_file: str | None, file_seq: int | None, position: int) -> list[dict]:
        if position >= size or not mask[position]:
            return []
        return full_rows(el, source_file, file_seq, position)

    return handler


def read_pubmed(inputs: str | Sequence[str], *, kinds: Sequence[str] = ("articles",),
                batch_rows: int = 2000, num_cpus: float | None = None,
                columns: list[str] | None = None,
                keep: Mapping[str, Sequence[int] | np.ndarray] | None = None) -> ray.data.Dataset:
    """PubMed XML files (paths, globs, directories) -> Dataset of RECORD_SCHEMA rows.

    One read task per file, in NLM order, so a slow or broken file is isolated; a broken file
    yields its good records plus one "error" row (when "errors" is in kinds) and never fails
    the job. `kinds` picks among "articles", "deletions", "errors" (column `record_type`);
    `columns` keeps only those columns, projected inside the read task (no separate stage).
    `keep` (file name -> sorted record positions) reads only those records of each file: each
    read task fetches its own file's list from the object store (a file not named keeps
    nothing), so no process holds per-record state for the whole run; XML errors (a broken
    record, a cut file) are then left to the index, which reported them.
    """
    import ray.data

    bad = [k for k in kinds if k not in RECORD_TYPES]
    if bad or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {sorted(RECORD_TYPES)}, got {kinds}")
    paths = expand_inputs([inputs] if isinstance(inputs, str) else list(inputs))
    refs = None if keep is None else {
        os.path.basename(name): ray.put(np.asarray(pos, dtype=np.int32)) for name, pos in keep.items()}
    source = _datasource_class()(paths, kinds=tuple(kinds), batch_rows=batch_rows, columns=columns,
                                 keep=refs, filesystem=input_filesystem(paths))
    return ray.data.read_datasource(source, override_num_blocks=len(paths), num_cpus=num_cpus)
