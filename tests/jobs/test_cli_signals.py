"""SIGTERM (`ray job stop`, a pod stopping) ends a command the way Ctrl-C does, so its `finally`
blocks run: the lease on its folder is released and the manifest says interrupted."""
from __future__ import annotations

import os
import signal

import pytest

from jobs.cli import sigterm_as_interrupt
from pipeline.storage import Location
from pipeline.storage.lease import LeaseConfig, hold_lease


def test_sigterm_raises_keyboard_interrupt_and_the_lease_is_released(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    loc = Location.open(tmp_path / "out")
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        with sigterm_as_interrupt(), hold_lease(loc, "run", "r1", LeaseConfig(), False):
            assert loc.exists("_lease.json")
            os.kill(os.getpid(), signal.SIGTERM)
    assert not loc.exists("_lease.json")
    assert signal.getsignal(signal.SIGTERM) is before  # the old handler is back
