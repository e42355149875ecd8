"""biomine's own progress line: articles mined / to mine, rate, ETA, errors so far.

It follows the commit log the sink writes (`OUT/_commits/KEY.parquet`, one per committed
file-group, its row count and `n_*` counters in the file's metadata), reading each new marker once from a background
thread, so it needs no hook in the Ray pipeline and its final count is exact (it also tells a
failed or interrupted invocation how much it committed). Commits come a file-group at a time
(`--rows-per-file` rows), so between them the line also shows how many articles have come
through the model stage of this invocation: the GPU actors' `stage_rows` in `OUT/_engine/`
(rewritten every ~10 s); rate and ETA follow whichever count is ahead.
"""
from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import IO

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.dataflow.sink import META_KEY
from pipeline.storage import Location

log = logging.getLogger(__name__)

COMMITS = "_commits"
COUNTERS = {"relations": "n_relations", "entities": "n_entities", "errors": "n_errors"}


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts blocks committed into an output folder since `start()`; optionally shows a line."""

    def __init__(self, output: str | Location, to_mine: int, *, show: bool = True,
                 stream: IO[str] | None = None, interval_s: float | None = None) -> None:
        self.output = Location.open(output)
        self.fs = self.output.fs
        self.folder = self.output.path(COMMITS)
        self.to_mine = to_mine
        self.show = show
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = interval_s or (1.0 if isinstance(self.fs, pafs.LocalFileSystem) else 10.0)
        self.counts = {"articles": 0, "relations": 0, "entities": 0, "errors": 0, "blocks": 0}
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._started_at = time.time()  # epoch: engine files written since then are this invocation's
        self.through_model = 0  # articles past the model stage (this invocation's GPU actors)
        self._last_log = 0.0

    @property
    def started(self) -> bool:
        """True once start() ran (stop() then reads the last markers)."""
        return self._thread is not None

    def _list(self) -> list[pafs.FileInfo]:
        infos = self.fs.get_file_info(pafs.FileSelector(self.folder, allow_not_found=True))
        return [i for i in infos if i.base_name.endswith(".parquet")]

    def start(self) -> "Progress":
        """Mark the blocks already committed as seen, then follow new ones in the background."""
        self._seen = {i.path for i in self._list()}
        self._started = time.monotonic()
        self._started_at = time.time()
        self._thread = threading.Thread(target=self._loop, name="biomine-progress", daemon=True)
        self._thread.start()
        return self

    def poll(self) -> dict[str, int]:
        """Read markers committed since the last poll; return the counts so far."""
        with self._lock:
            for info in self._list():
                if info.path in self._seen:
                    continue
                try:
                    meta = pq.read_schema(info.path, filesystem=self.fs).metadata or {}
                    marker = json.loads(meta[META_KEY])
                except (OSError, ValueError, KeyError) as exc:  # a marker mid-rename: read it next time
                    log.debug("progress: %s not readable yet (%s)", info.path, exc)
                    continue
                self._seen.add(info.path)
                extra = marker.get("counts") or {}
                self.counts["articles"] += int(marker.get("rows", 0))
                self.counts["blocks"] += 1
                for name, key in COUNTERS.items():
                    self.counts[name] += int(extra.get(key, 0))
            self.through_model = self._through_model()
            return dict(self.counts)

    def _through_model(self) -> int:
        """Articles the GPU actors of this invocation have passed on (0 when none has reported)."""
        from pipeline.records.engine_stats import collect_engine_counters

        try:
            engine = collect_engine_counters(self.output, self._started_at)
        except OSError as exc:  # an object-store hiccup: keep the last figure
            log.debug("progress: engine counters not readable (%s)", exc)
            return self.through_model
        return min(int(engine.get("stage_rows", 0)), self.to_mine)

    def line(self) -> str:
        """`mined 1,200/30,000 articles (4%)  model 5,100  41.2/s  ETA 0:11:39  errors 3  [0:02:04]`."""
        done, elapsed = self.counts["articles"], max(time.monotonic() - self._started, 1e-6)
        ahead = max(done, self.through_model)
        rate = ahead / elapsed
        eta = _clock((self.to_mine - ahead) / rate) if rate > 0 and ahead < self.to_mine else "--:--"
        pct = f" ({100 * done / self.to_mine:.0f}%)" if self.to_mine else ""
        model = f"  model {self.through_model:,}" if self.through_model > done else ""
        return (f"mined {done:,}/{self.to_mine:,} articles{pct}{model}  {rate:.1f}/s  ETA {eta}  "
                f"errors {self.counts['errors']:,}  [{_clock(elapsed)}]")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll()
            except OSError as exc:  # listing failed (object store hiccup): try again next tick
                log.debug("progress poll failed: %s", exc)
                continue
            self._render()

    def _render(self) -> None:
        if not self.show:
            return
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()
        elif time.monotonic() - self._last_log >= 30:
            self._last_log = time.monotonic()
            log.info("%s", self.line())

    def stop(self) -> dict[str, int]:
        """Stop following, read the last markers; returns the exact counts of this invocation."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        counts = self.poll()
        if self.show and self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()
        return counts
