"""A lease on an output or state folder: one job at a time works in it (`LOC/_lease.json`).

`hold_lease(loc, job, run_id)` takes `LOC/_lease.json` with put-if-absent (`create_exclusive`:
If-None-Match on S3, an exclusive hard link locally), keeps its heartbeat fresh from a daemon
thread (the owner overwrites its own lease) and deletes it when the block ends, however it
ends. A driver killed outright cannot delete it: its lease goes stale once its heartbeat is
older than its TTL and the next job takes it over with a warning. A live lease refuses the job
with `LeaseHeld` (a ValueError: the CLI prints its one line and exits 2); `break_lease` removes
any lease first. Staleness is judged by the holder's clock (its heartbeat time) against ours, so
node clocks must agree to well within the TTL (NTP does). Two jobs taking over the same stale
lease in the same instant could both win; the commit records (put-if-absent) stay the backstop.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pipeline.storage.location import Location

log = logging.getLogger(__name__)

LEASE_FILE = "_lease.json"


@dataclass(frozen=True)
class LeaseConfig:
    """How long a lease lives without a heartbeat, and how often its holder refreshes it."""

    ttl_s: float = 600.0
    heartbeat_s: float | None = None  # None: min(30 s, ttl_s / 4)
    name: str = LEASE_FILE

    def __post_init__(self) -> None:
        if self.ttl_s <= 0:
            raise ValueError(f"lease TTL must be positive (got {self.ttl_s})")
        if self.heartbeat_s is not None and not 0 < self.heartbeat_s < self.ttl_s / 3:
            raise ValueError(f"lease heartbeat {self.heartbeat_s} s must be under a third of "
                             f"its TTL ({self.ttl_s} s)")

    @property
    def interval_s(self) -> float:
        """Seconds between heartbeats (always under a third of the TTL)."""
        return self.heartbeat_s if self.heartbeat_s is not None else min(30.0, self.ttl_s / 4)


def new_run_id(job: str) -> str:
    """A fresh id for one invocation: JOB-YYYYmmddTHHMMSS-xxxxxx."""
    return f"{job}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


def _iso(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, timezone.utc).isoformat(timespec="seconds")


def _epoch(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except (TypeError, ValueError):
        return None


def heartbeat_age(holder: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds since the holder's last heartbeat (None: no readable heartbeat)."""
    beat = _epoch(holder.get("heartbeat"))
    return None if beat is None else (time.time() if now is None else now) - beat


def describe(holder: dict[str, Any]) -> str:
    """'run ID, host H, pid P, started T, last heartbeat T (N s ago)' for messages."""
    age = heartbeat_age(holder)
    ago = "" if age is None else f" ({max(age, 0):.0f} s ago)"
    return (f"run {holder.get('run_id') or '(new)'}, host {holder.get('host', '?')}, "
            f"pid {holder.get('pid', '?')}, started {holder.get('started', '?')}, "
            f"last heartbeat {holder.get('heartbeat', '?')}{ago}")


class LeaseHeld(ValueError):
    """Another live job holds the lease: one line naming it and what to do."""

    def __init__(self, where: str, holder: dict[str, Any], ttl_s: float) -> None:
        self.holder = holder
        job = holder.get("job") or "job"
        super().__init__(
            f"{where} is in use by another biomine {job} ({describe(holder)}; a lease without a "
            f"heartbeat for {ttl_s:.0f} s is taken over): wait for it to finish, or, if that job "
            f"is dead, run this command again with --break-lease")


class Lease:
    """One job's lease on a folder: acquire, heartbeat from a daemon thread, release."""

    def __init__(self, loc: Location, job: str, run_id: str | None = None,
                 config: LeaseConfig | None = None) -> None:
        self.loc, self.job, self.config = loc, job, config or LeaseConfig()
        self.token = uuid.uuid4().hex  # ours alone: whose lease it is, whatever the run id
        now = _iso()
        self.record: dict[str, Any] = {"job": job, "run_id": run_id, "host": socket.gethostname(),
                                       "pid": os.getpid(), "started": now, "heartbeat": now,
                                       "ttl_s": self.config.ttl_s, "token": self.token}
        self.lost = False
        self.released = False
        self._lock = threading.RLock()  # the heartbeat thread and the job's own calls
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._made: str | None = None  # the first folder the lease itself created (local)

    @property
    def name(self) -> str:
        """The lease file, relative to the folder."""
        return self.config.name

    def read(self) -> dict[str, Any] | None:
        """The lease as stored (None: no lease; {} : unreadable, so treated as stale)."""
        try:
            data = self.loc.read_json(self.name)
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _ttl(self, holder: dict[str, Any]) -> float:
        try:
            return float(holder.get("ttl_s") or self.config.ttl_s)
        except (TypeError, ValueError):
            return self.config.ttl_s

    def is_stale(self, holder: dict[str, Any]) -> bool:
        """Whether a stored lease has had no heartbeat for longer than its TTL."""
        age = heartbeat_age(holder)
        return age is None or age > self._ttl(holder)

    def _create(self) -> bool:
        now = _iso()
        self.record.update(started=now, heartbeat=now)
        return self.loc.create_exclusive(self.name, _encode(self.record))

    def acquire(self, break_lease: bool = False) -> Lease:
        """Take the lease (a stale one is taken over, any one with break_lease); LeaseHeld if live."""
        where = self.loc.url()
        if break_lease:
            held = self.read()
            if held is not None:
                log.warning("%s: --break-lease: removing the lease of %s", where, describe(held))
                self.loc.delete(self.name)
        self._made = _first_missing(self.loc.base) if self.loc.is_local else None
        if not self._create():
            held = self.read()
            if held is not None:
                if not self.is_stale(held):
                    raise LeaseHeld(where, held, self._ttl(held))
                log.warning("%s: taking over the stale lease of %s (no heartbeat for over %.0f s: "
                            "that job is gone)", where, describe(held), self._ttl(held))
                if (self.read() or {}).get("token") == held.get("token"):  # not retaken meanwhile
                    self.loc.delete(self.name)
            if not self._create():  # lost the race to another job
                held = self.read() or {}
                raise LeaseHeld(where, held, self._ttl(held))
        log.debug("%s: lease taken (%s)", where, describe(self.record))
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.job}", daemon=True)
        self._thread.start()
        return self

    def refresh(self) -> bool:
        """Rewrite the heartbeat while the lease is ours; False (with a warning) once it was lost."""
        with self._lock:
            if self.lost or self.released:
                return False
            held = self.read()
            if held is None or held.get("token") != self.token:
                self.lost = True
                log.warning("%s: this job's lease was %s; the commit records still keep the "
                            "output consistent", self.loc.url(),
                            "removed" if held is None else f"taken over by {describe(held)}")
                return False
            self.record["heartbeat"] = _iso()
            self.loc.write_bytes(self.name, _encode(self.record))
            return True

    def set_run_id(self, run_id: str) -> None:
        """Name the run in the lease once it is known (rewritten at once)."""
        with self._lock:
            if self.record.get("run_id") != run_id:
                self.record["run_id"] = run_id
                with contextlib.suppress(OSError):
                    self.refresh()

    def _beat(self) -> None:
        while not self._stop.wait(self.config.interval_s):
            try:
                if not self.refresh():
                    return
            except Exception as exc:  # a storage hiccup: the next beat tries again
                log.warning("%s: lease heartbeat failed: %s", self.loc.url(), exc)

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still ours (never raises)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        with self._lock:
            if self.released:
                return
            self.released = True
            try:
                held = self.read()
                if held is not None and held.get("token") == self.token:
                    self.loc.delete(self.name)
                if self._made:  # folders made only for the lease (a refused plan): no trace left
                    _remove_empty(self.loc.base, self._made)
            except Exception as exc:  # the job's own outcome matters more than the lease file
                log.warning("%s: could not release the lease (it expires after %.0f s): %s",
                            self.loc.url(), self.config.ttl_s, exc)


def _first_missing(path: str) -> str | None:
    """The top-most missing folder on the way to path (None: path exists)."""
    top = None
    while path and not os.path.exists(path):
        top, path = path, os.path.dirname(path)
    return top


def _remove_empty(path: str, top: str) -> None:
    """Remove path and its parents up to top while they are empty."""
    while True:
        try:
            os.rmdir(path)
        except OSError:
            return
        if path == top or len(path) <= len(top):
            return
        path = os.path.dirname(path)


def _encode(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=1, sort_keys=True) + "\n").encode("utf-8")


@contextlib.contextmanager
def hold_lease(loc: str | Location, job: str, run_id: str | None = None, config: LeaseConfig | None = None,
               break_lease: bool = False) -> Iterator[Lease]:
    """Hold the folder's lease for the block (released on any exit; LeaseHeld if another job has it)."""
    lease = Lease(Location.open(loc), job, run_id, config).acquire(break_lease)
    try:
        yield lease
    finally:
        lease.release()
