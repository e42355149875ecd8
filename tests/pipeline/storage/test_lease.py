"""pipeline.storage.lease: one job at a time per folder (local folder and moto S3), no Ray."""
from __future__ import annotations

import json
import logging
import os
import socket
import time
from datetime import datetime, timezone

import pytest

from pipeline.storage import Location
from pipeline.storage.lease import LEASE_FILE, Lease, LeaseConfig, LeaseHeld, hold_lease

QUICK = LeaseConfig(ttl_s=3.0, heartbeat_s=0.2)


def iso(seconds_ago: float) -> str:
    return datetime.fromtimestamp(time.time() - seconds_ago, timezone.utc).isoformat(timespec="seconds")


def plant(loc: Location, seconds_ago: float, ttl_s: float = 600, run_id: str = "update-dead") -> dict:
    """A lease left by another job (pid 4242 on host elsewhere), last heartbeat seconds_ago."""
    record = {"job": "update", "run_id": run_id, "host": "elsewhere", "pid": 4242,
              "started": iso(seconds_ago + 60), "heartbeat": iso(seconds_ago), "ttl_s": ttl_s,
              "token": "theirs"}
    assert loc.create_exclusive(LEASE_FILE, json.dumps(record).encode())
    return record


def test_take_refuse_release(loc):
    with hold_lease(loc, "update", "update-1") as lease:
        stored = loc.read_json(LEASE_FILE)
        assert stored["run_id"] == "update-1" and stored["pid"] == os.getpid()
        assert stored["host"] == socket.gethostname() and stored["token"] == lease.token
        assert stored["started"] and stored["heartbeat"] and stored["ttl_s"] == 600
        with pytest.raises(LeaseHeld) as refused:
            Lease(loc, "update", "update-2").acquire()
        line = str(refused.value)
        assert "\n" not in line and "in use by another biomine update" in line
        for part in ("run update-1", f"host {socket.gethostname()}", f"pid {os.getpid()}",
                     f"started {stored['started']}", "last heartbeat", "--break-lease", "wait"):
            assert part in line, (part, line)
        assert loc.read_json(LEASE_FILE)["token"] == lease.token  # the refused one left it alone
    assert not loc.exists(LEASE_FILE)
    with hold_lease(loc, "update", "update-2"):  # free again
        assert loc.read_json(LEASE_FILE)["run_id"] == "update-2"
    assert not loc.exists(LEASE_FILE)


def test_a_live_lease_of_a_dead_looking_job_still_refuses(loc):
    plant(loc, seconds_ago=30)
    with pytest.raises(LeaseHeld, match=r"run update-dead, host elsewhere, pid 4242.*\(3[0-2] s ago"):
        Lease(loc, "update").acquire()
    assert loc.read_json(LEASE_FILE)["token"] == "theirs"


def test_a_stale_lease_is_taken_over_with_a_warning(loc, caplog):
    plant(loc, seconds_ago=120, ttl_s=60)  # the lease's own TTL judges it, not ours
    with caplog.at_level(logging.WARNING, logger="pipeline.storage.lease"):
        with hold_lease(loc, "update", "update-new") as lease:
            assert loc.read_json(LEASE_FILE)["token"] == lease.token
    assert "taking over the stale lease of run update-dead, host elsewhere, pid 4242" in caplog.text
    assert not loc.exists(LEASE_FILE)


def test_an_unreadable_lease_is_stale(loc):
    loc.write_text(LEASE_FILE, "not json")
    with hold_lease(loc, "run", "r") as lease:
        assert loc.read_json(LEASE_FILE)["token"] == lease.token


def test_break_lease_removes_a_live_lease(loc, caplog):
    plant(loc, seconds_ago=1)
    with caplog.at_level(logging.WARNING, logger="pipeline.storage.lease"):
        with hold_lease(loc, "update", "update-new", break_lease=True) as lease:
            assert loc.read_json(LEASE_FILE)["token"] == lease.token
    assert "--break-lease: removing the lease of run update-dead" in caplog.text
    assert not loc.exists(LEASE_FILE)
    with hold_lease(loc, "update", break_lease=True):  # no lease to break: just taken
        pass


def test_released_when_the_job_fails(loc):
    with pytest.raises(RuntimeError, match="boom"):
        with hold_lease(loc, "update", "u"):
            raise RuntimeError("boom")
    assert not loc.exists(LEASE_FILE)
    with pytest.raises(KeyboardInterrupt):
        with hold_lease(loc, "update", "u"):
            raise KeyboardInterrupt
    assert not loc.exists(LEASE_FILE)


def test_the_heartbeat_keeps_a_lease_live_past_its_ttl(loc):
    with hold_lease(loc, "update", "u", QUICK) as lease:
        first = loc.read_json(LEASE_FILE)
        time.sleep(QUICK.ttl_s + 0.5)  # longer than the TTL: only the heartbeat keeps it live
        now = loc.read_json(LEASE_FILE)
        assert now["started"] == first["started"] and now["heartbeat"] > first["heartbeat"]
        with pytest.raises(LeaseHeld):
            Lease(loc, "update", config=QUICK).acquire()
        assert not lease.lost
    assert not loc.exists(LEASE_FILE)


def test_a_lease_taken_over_is_not_deleted_by_its_old_owner(loc, caplog):
    lease = Lease(loc, "update", "old", QUICK).acquire()
    try:
        loc.write_json(LEASE_FILE, {"run_id": "new", "token": "someone-else", "heartbeat": iso(0)})
        with caplog.at_level(logging.WARNING, logger="pipeline.storage.lease"):
            assert lease.refresh() is False
        assert lease.lost and "taken over by run new" in caplog.text
    finally:
        lease.release()
    assert loc.read_json(LEASE_FILE)["token"] == "someone-else"


def test_config_keeps_the_heartbeat_under_a_third_of_the_ttl():
    assert LeaseConfig().interval_s == 30 and LeaseConfig(ttl_s=60).interval_s == 15
    with pytest.raises(ValueError, match="under a third"):
        LeaseConfig(ttl_s=30, heartbeat_s=10)
    with pytest.raises(ValueError):
        LeaseConfig(ttl_s=0)


def test_a_folder_made_only_for_the_lease_is_removed_with_it(tmp_path):
    out = tmp_path / "a" / "b"
    with hold_lease(str(out), "run"):
        assert (out / LEASE_FILE).is_file()
    assert not (tmp_path / "a").exists()
